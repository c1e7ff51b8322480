import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../shared/log.js";
import { Metrics } from "./metrics.js";
import { ProxiedRequestLog } from "./request-log.js";

describe("ProxiedRequestLog", () => {
  it("summarises an instance's requests by status, as JSON keyed by status", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write: (chunk, _encoding, done) => {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const log = new ProxiedRequestLog(
      createLogger({ level: "info", name: "t" }, sink),
      new Metrics(),
    );
    const request = { method: "GET", route: "/api/v1/instances/:name/*", instance: "p1" };
    for (const status of [200, 200, 204]) log.record({ ...request, status, seconds: 0.002 });
    log.close();
    const summary = lines.find((line) => line.msg === "requests");
    expect(summary).toMatchObject({
      instance: "p1",
      requests: 3,
      statuses: { "200": 2, "204": 1 },
      durationMsMean: 2,
    });
  });
});
