import { Writable } from "node:stream";
import { HTTPError } from "h3";
import { describe, expect, it } from "vitest";
import { KubeApiError, KubeUnavailableError } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import { answerError, answerOf, fleetErrorOf } from "./answer.js";
import { FleetError } from "./fleet-error.js";

/** What h3 makes of anything thrown that is not an HTTPError. */
function unhandled(thrown: Error): HTTPError {
  return Object.assign(new HTTPError(thrown), { unhandled: true });
}

const bodyOf = (error: unknown) => answerOf(fleetErrorOf(error)).body;

describe("answerOf", () => {
  it("answers a fleet error with its code's status, its code and its message", () => {
    expect(answerOf(new FleetError("instance_limit", "Too many."))).toEqual({
      status: 429,
      headers: {},
      body: { statusCode: 429, code: "instance_limit", message: "Too many." },
    });
  });

  it("asks to retry later for the codes that mean later", () => {
    expect(answerOf(new FleetError("fleet_full", "full")).headers).toEqual({ "retry-after": "30" });
    expect(answerOf(new FleetError("instance_starting", "s")).headers).toEqual({
      "retry-after": "2",
    });
  });

  it("adds what gptme's web UI reads of a failed sign-in", () => {
    const error = new FleetError("invalid_code", "Unknown.", { error: "Invalid", hint: "Again" });
    expect(answerOf(error).body).toEqual({
      statusCode: 401,
      code: "invalid_code",
      message: "Unknown.",
      error: "Invalid",
      hint: "Again",
    });
  });
});

describe("fleetErrorOf", () => {
  it("finds the fleet error h3 wrapped", () => {
    expect(bodyOf(unhandled(new FleetError("not_found", "None.")))).toEqual({
      statusCode: 404,
      code: "not_found",
      message: "None.",
    });
  });

  it("answers an unexpected Kubernetes 404 (a missing CRD) as a 500, not as a missing route", () => {
    const error = unhandled(new KubeApiError(404, "NotFound", "the server could not find it"));
    expect(error.status).toBe(404);
    expect(bodyOf(error)).toEqual({
      statusCode: 500,
      code: "internal_error",
      message: "Internal error; it has been logged.",
    });
  });

  it("answers an unreachable API server as 503 kubernetes_unavailable", () => {
    const answer = answerOf(fleetErrorOf(unhandled(new KubeUnavailableError("down"))));
    expect(answer.status).toBe(503);
    expect(answer.body.code).toBe("kubernetes_unavailable");
    expect(answer.headers["retry-after"]).toBe("5");
  });

  it("answers h3's own not-found and client errors without internals", () => {
    expect(bodyOf(new HTTPError({ status: 404, message: "Cannot find /x?key" }))).toEqual({
      statusCode: 404,
      code: "not_found",
      message: "No such route.",
    });
    expect(bodyOf(new HTTPError({ status: 400, message: "bad /x?key" })).code).toBe("bad_request");
  });
});

describe("answerError", () => {
  function logged(error: unknown) {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    answerError(error, createLogger({ level: "info", name: "test" }, sink), "/instances/:id");
    return lines.map((line) => JSON.parse(line));
  }

  it("logs an internal error once, with its stack", () => {
    const lines = logged(unhandled(new TypeError("boom")));
    expect(lines).toHaveLength(1);
    expect(lines[0].msg).toBe("request failed");
    expect(lines[0].err.message).toBe("boom");
    expect(lines[0].err.stack).toContain("TypeError: boom");
  });

  it("logs why the API server is unavailable", () => {
    const lines = logged(unhandled(new KubeUnavailableError("a quota not counted yet")));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ code: "kubernetes_unavailable", route: "/instances/:id" });
    expect(lines[0].err.message).toBe("a quota not counted yet");
  });

  it("does not log a client's own mistakes", () => {
    expect(logged(new FleetError("invalid_wait", "no"))).toEqual([]);
  });
});
