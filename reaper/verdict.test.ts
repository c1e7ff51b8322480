import { describe, expect, it } from "vitest";
import { detailOf, type Fetched, generatingOf, sseConnectionsOf, verdictOf } from "./verdict.js";

// Answers as gptme-server 0.35.1 gives them (docs/operations.md, "Is it working? The probe").
const health = (generating: number): Fetched => ({
  status: 200,
  body: JSON.stringify({
    generating_count: generating,
    health: generating ? "yellow" : "green",
    idle_count: 1,
    session_count: 1 + generating,
    slots: [],
  }),
});
const metrics = (streams: string): Fetched => ({
  status: 200,
  body: [
    "# HELP gptme_server_sse_connections_active Number of active SSE connections",
    "# TYPE gptme_server_sse_connections_active gauge",
    `gptme_server_sse_connections_active ${streams}`,
    'gptme_server_requests_total{endpoint="/api/v2/server/health",method="GET",status="200"} 3.0',
  ].join("\n"),
});
const refused: Fetched = { error: "ECONNREFUSED" };

describe("verdictOf", () => {
  it("is idle only when both answers say nothing is going on", () => {
    expect(verdictOf({ health: health(0), metrics: metrics("0.0") })).toEqual({
      verdict: "idle",
      generating: 0,
      sseConnections: 0,
    });
  });

  it("is busy while a session generates, or while a client holds an event stream open", () => {
    expect(verdictOf({ health: health(1), metrics: metrics("0.0") })).toEqual({
      verdict: "busy",
      generating: 1,
      sseConnections: 0,
    });
    expect(verdictOf({ health: health(0), metrics: metrics("2.0") })).toEqual({
      verdict: "busy",
      generating: 0,
      sseConnections: 2,
    });
  });

  it("keeps an instance on one busy signal even when the other path fails", () => {
    expect(verdictOf({ health: health(1), metrics: refused })).toEqual({
      verdict: "busy",
      generating: 1,
      sseConnections: undefined,
    });
    expect(verdictOf({ health: { status: 500, body: "" }, metrics: metrics("1.0") })).toEqual({
      verdict: "busy",
      generating: undefined,
      sseConnections: 1,
    });
  });

  it("is unreachable when an idle-looking answer misses its other half, saying why", () => {
    expect(verdictOf({ health: health(0), metrics: refused })).toEqual({
      verdict: "unreachable",
      unreachable: "metrics: ECONNREFUSED",
    });
    expect(verdictOf({ health: refused, metrics: refused })).toEqual({
      verdict: "unreachable",
      unreachable: "health: ECONNREFUSED; metrics: ECONNREFUSED",
    });
    expect(
      verdictOf({ health: { error: "no answer within 2000 ms" }, metrics: metrics("0.0") }),
    ).toEqual({ verdict: "unreachable", unreachable: "health: no answer within 2000 ms" });
  });
});

describe("the signals, from whatever came back", () => {
  it.each([
    [{ status: 200, body: "<html>hello</html>" }, "health: not JSON"],
    [{ status: 200, body: "null" }, "health: no generating_count"],
    [{ status: 200, body: '{"generating_count":"1"}' }, "health: no generating_count"],
    [{ status: 200, body: '{"generating_count":-1}' }, "health: no generating_count"],
    [{ status: 200, body: '{"generating_count":0.5}' }, "health: no generating_count"],
    [{ status: 404, body: '{"generating_count":1}' }, "health: HTTP 404"],
    [{ status: 200, body: '{"generating_count":3}' }, 3],
  ] as const)("health %j reads as %j", (answer, expected) => {
    expect(generatingOf(answer)).toBe(expected);
  });

  it.each([
    [metrics("1.0"), 1],
    [metrics("0"), 0],
    // A gauge decremented once too often is no stream.
    [metrics("-1.0"), 0],
    [metrics("NaN"), "metrics: bad gptme_server_sse_connections_active"],
    [
      { status: 200, body: "gptme_server_sse_connections_active_total 4.0" },
      "metrics: no gptme_server_sse_connections_active",
    ],
    [{ status: 200, body: "" }, "metrics: no gptme_server_sse_connections_active"],
    [{ status: 401, body: "" }, "metrics: HTTP 401"],
  ] as const)("metrics %j reads as %j", (answer, expected) => {
    expect(sseConnectionsOf(answer)).toBe(expected);
  });
});

describe("detailOf", () => {
  it("says in a few words what decided", () => {
    expect(detailOf({ verdict: "busy", generating: 1, sseConnections: undefined })).toBe(
      "generating 1, event streams ?",
    );
    expect(detailOf({ verdict: "unreachable", unreachable: "health: ECONNREFUSED" })).toBe(
      "health: ECONNREFUSED",
    );
  });
});
