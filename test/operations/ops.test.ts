import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestNamespace,
  deleteTestNamespace,
  unreachableKubeConfig,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(?:e[+-]?\d+)?|NaN|\+Inf|-Inf)$/;

/** Parses Prometheus text exposition; throws on any line that is not valid. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
  }
  return samples;
}

describe("operations endpoints", () => {
  let namespace: string;
  let handler: TestHandler;

  beforeAll(async () => {
    namespace = await createTestNamespace("ops");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace);
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("/healthz and /readyz answer 200 while serving against a reachable API server", async () => {
    expect((await handler.request("/healthz")).status).toBe(200);
    const ready = await handler.request("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("/readyz reuses its answer for a moment instead of asking the API server each time", async () => {
    handler.counter.reset();
    await Promise.all(Array.from({ length: 20 }, () => handler.request("/readyz")));
    expect(handler.counter.calls.length).toBeLessThanOrEqual(1);
  });

  it("/metrics is Prometheus text that counts what happened", async () => {
    const key = "metrics-key-0000001";
    await handler.request("/instances/m1?wait=30", { apiKey: key });
    await handler.request("/instances/m1", { apiKey: key });
    await handler.request("/instances/Bad_Id", { apiKey: key });
    await handler.request("/instances/m1", { apiKey: key, method: "DELETE" });

    const res = await handler.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const metrics = parseMetrics(await res.text());
    const route = 'method="GET",route="/instances/:instanceId"';
    expect(metrics.get(`fleet_http_requests_total{${route},status="200"}`)).toBe(2);
    expect(metrics.get(`fleet_http_requests_total{${route},status="400"}`)).toBe(1);
    expect(metrics.get(`fleet_http_request_duration_seconds_count{${route}}`)).toBe(3);
    // By plan: without PLANS_FILE, every client's is `default`.
    expect(metrics.get('fleet_instances_created_total{plan="default"}')).toBe(1);
    expect(metrics.get('fleet_instances_deleted_total{plan="default"}')).toBe(1);
    expect(metrics.get('fleet_instances_replaced_total{plan="default"}')).toBe(0);
    expect(
      metrics.get('fleet_kubernetes_requests_total{verb="create",resource="clientpods"}'),
    ).toBe(1);
    expect(
      metrics.get('fleet_kubernetes_requests_total{verb="get",resource="pods"}'),
    ).toBeGreaterThanOrEqual(2);
  });

  it("counts Kubernetes API errors by verb, and not the 404s that are answers", async () => {
    // A configured token key: the first call a request makes is then the Pod's read (a get).
    const offline = startHandler(
      namespace,
      { INSTANCE_TOKEN_SECRET: "k".repeat(40) },
      unreachableKubeConfig(),
    );
    const broken = startHandler(namespace, { POD_TEMPLATE: "missing" });
    try {
      await offline.request("/instances/x", { apiKey: "metrics-key-0000002" });
      const failed = parseMetrics(await offline.metrics.registry.metrics());
      expect(
        failed.get('fleet_kubernetes_errors_total{verb="get",resource="pods",kind="unavailable"}'),
      ).toBe(1);

      await broken.request("/instances/x", { apiKey: "metrics-key-0000002" });
      const answered = parseMetrics(await broken.metrics.registry.metrics());
      expect(
        answered.get('fleet_kubernetes_requests_total{verb="get",resource="podtemplates"}'),
      ).toBe(1);
      expect(
        [...answered.keys()].filter((k) => k.startsWith("fleet_kubernetes_errors_total{")),
      ).toEqual([]);
    } finally {
      offline.close();
      broken.close();
    }
  });
});
