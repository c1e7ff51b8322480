import { HTTPError } from "h3";
import { describe, expect, it } from "vitest";
import { KubeApiError } from "../shared/kube/client.js";
import { apiError, errorBody } from "./errors.js";

/** What h3 makes of anything thrown that is not an HTTPError. */
function unhandled(thrown: Error): HTTPError {
  return Object.assign(new HTTPError(thrown), { unhandled: true });
}

describe("errorBody", () => {
  it("answers an API error with its own status, code and message", () => {
    expect(errorBody(apiError(429, "instance_limit", "Too many."))).toEqual({
      statusCode: 429,
      code: "instance_limit",
      message: "Too many.",
    });
  });

  it("answers an unexpected Kubernetes 404 (a missing CRD) as a 500, not as a missing route", () => {
    const error = unhandled(new KubeApiError(404, "NotFound", "the server could not find it"));
    expect(error.status).toBe(404);
    expect(errorBody(error)).toEqual({
      statusCode: 500,
      code: "internal_error",
      message: "Internal error; it has been logged.",
    });
  });

  it("answers h3's own not-found and client errors without internals", () => {
    expect(errorBody(new HTTPError({ status: 404, message: "Cannot find /x?key" }))).toEqual({
      statusCode: 404,
      code: "not_found",
      message: "No such route.",
    });
    expect(errorBody(new HTTPError({ status: 400, message: "bad /x?key" })).code).toBe(
      "bad_request",
    );
  });
});
