import { describe, expect, it } from "vitest";
import { Metrics } from "./metrics.js";

describe("Metrics", () => {
  it("adds the gateway's admitted credentials to their counter when it is read, each once", async () => {
    const metrics = new Metrics();
    const line = async (kind: string) =>
      (await metrics.registry.metrics())
        .split("\n")
        .find((l) => l.startsWith(`fleet_gateway_credentials_total{kind="${kind}"}`));
    metrics.countCredential("instance-token");
    metrics.countCredential("instance-token");
    metrics.countCredential("sse-token");
    expect(await line("instance-token")).toBe(
      'fleet_gateway_credentials_total{kind="instance-token"} 2',
    );
    expect(await line("sse-token")).toBe('fleet_gateway_credentials_total{kind="sse-token"} 1');
    // Read again: nothing counted twice; then one more.
    expect(await line("instance-token")).toMatch(/ 2$/);
    metrics.countCredential("instance-token");
    expect(await line("instance-token")).toMatch(/ 3$/);
  });

  it("writes the requests' counter and histogram on its registry", async () => {
    const metrics = new Metrics();
    metrics.requests.record("GET", "/healthz", 200, 0.001);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'fleet_http_requests_total{method="GET",route="/healthz",status="200"} 1',
    );
    expect(text).toContain(
      'fleet_http_request_duration_seconds_count{method="GET",route="/healthz"} 1',
    );
  });
});
