import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { DURATION_BUCKETS, RequestMetrics } from "./request-metrics.js";

describe("RequestMetrics", () => {
  it("writes exactly what prom-client's own counter and histogram write for the same answers", async () => {
    const theirs = new Registry();
    const counter = new Counter({
      name: "fleet_http_requests_total",
      help: "HTTP requests answered, by method, route and status.",
      labelNames: ["method", "route", "status"] as const,
      registers: [theirs],
    });
    const histogram = new Histogram({
      name: "fleet_http_request_duration_seconds",
      help: "Time to answer an HTTP request, by method and route.",
      labelNames: ["method", "route"] as const,
      buckets: DURATION_BUCKETS,
      registers: [theirs],
    });
    const ours = new Registry();
    const requests = new RequestMetrics(ours);
    const answers: [string, string, number, number][] = [
      ["GET", "/instances/:instanceId", 200, 0.003],
      ["GET", "/instances/:instanceId", 200, 0.005], // on a bound: counted in it
      ["GET", "/instances/:instanceId", 400, 0.0051],
      ["DELETE", "/instances/:instanceId", 200, 0.2],
      ["GET", "/api/v1/instances/:name/**", 502, 61], // past every bound
      ["POST", 'a "quoted\\ route', 201, 1],
      // A route seen before, with another method and another status: listed as first seen.
      ["POST", "/instances/:instanceId", 409, 0.01],
      ["GET", "/instances/:instanceId", 404, 0.02],
    ];
    for (const [method, route, status, seconds] of answers) {
      counter.inc({ method, route, status });
      histogram.observe({ method, route }, seconds);
      requests.record(method, route, status, seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
