import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  lastActivityOf,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const KEY = "activity-key-000001";

describe("activity: each request refreshes lastActivity, at most once per ACTIVITY_INTERVAL", () => {
  let namespace: string;
  let handler: TestHandler;
  let clock = new Date();
  const name = instanceNameOf(clientIdOf(KEY), "busy");
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const lastActivity = () => lastActivityOf(namespace, name);

  beforeAll(async () => {
    namespace = await createTestNamespace("activity");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(
      namespace,
      { ACTIVITY_INTERVAL: "60s", IDLE_TIMEOUT: "10m" },
      undefined,
      () => clock,
    );
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("counts creation as the first activity and writes nothing within the interval", async () => {
    const first = await (await handler.request("/instances/busy?wait=30", { apiKey: KEY })).json();
    expect(first.lastActivity).toBe(first.createdAt);
    // Written at creation, so that `kubectl get cpod` shows it from the start.
    expect(Date.parse(await lastActivity())).toBe(Date.parse(first.createdAt));

    clock = new Date(Date.parse(first.createdAt) + 59_000);
    handler.counter.reset();
    const second = await (await handler.request("/instances/busy", { apiKey: KEY })).json();
    expect(handler.counter.calls).toEqual(["get pods"]);
    expect(second.lastActivity).toBe(first.createdAt);
  });

  it("writes once the interval has passed, on the ClientPod alone, after checking no other replica just did", async () => {
    clock = new Date(clock.getTime() + 2_000);
    handler.counter.reset();
    const res = await (await handler.request("/instances/busy", { apiKey: KEY })).json();
    expect(handler.counter.calls).toEqual(["get pods", "get clientpods", "patch clientpods"]);
    expect(res.lastActivity).toBe(clock.toISOString());
    expect(res.expiresAt).toBe(new Date(clock.getTime() + 10 * 60_000).toISOString());
    expect(Date.parse(await lastActivity())).toBe(Math.floor(clock.getTime() / 1000) * 1000);
    // The Pod's mirror is not rewritten for activity alone: every Pod write wakes its watchers.
    const pod = await core.readNamespacedPod({ name, namespace });
    expect(pod.metadata?.annotations?.["gptme.ai/last-activity"]).toBe(
      new Date(Date.parse(pod.metadata?.annotations?.["gptme.ai/created-at"] ?? "")).toISOString(),
    );

    // Right after a write, the next request writes nothing, and reads the Pod alone.
    handler.counter.reset();
    const next = await (await handler.request("/instances/busy", { apiKey: KEY })).json();
    expect(handler.counter.calls).toEqual(["get pods"]);
    expect(next.lastActivity).toBe(clock.toISOString());
  });

  it("honours per-instance timeout overrides in expiresAt", async () => {
    await custom.patchNamespacedCustomObject(
      {
        group: "gptme.ai",
        version: "v1",
        namespace,
        plural: "clientpods",
        name,
        body: { spec: { idleTimeoutSeconds: 120 } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    clock = new Date(clock.getTime() + 61_000);
    const res = await (await handler.request("/instances/busy", { apiKey: KEY })).json();
    expect(res.expiresAt).toBe(new Date(clock.getTime() + 120_000).toISOString());
  });
});
