import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANNOTATION_PHASE } from "../../shared/instance/record.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  installFleetQuota,
  installTemplate,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

// What a new instance costs the API server: each of its objects written once, its status
// once (with the phase its Pod reached while the request waited), its Pod's sighting once,
// and no read beyond the warm one; in a namespace set up as the manifests do (the fleet's
// cap a ResourceQuota, which the handler trusts instead of counting the fleet).

describe("a cold start", () => {
  let namespace: string;
  let handler: TestHandler;
  let health: PodHealth;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);

  beforeAll(async () => {
    namespace = await createTestNamespace("cold-start");
    health = answerPodHealth(namespace);
    await installTemplate(namespace);
    await installFleetQuota(namespace, 50);
    handler = startHandler(namespace, { MAX_INSTANCES: "50", WORKSPACES: "on" });
  });

  afterAll(async () => {
    handler?.close();
    await health?.stop();
    await deleteTestNamespace(namespace);
  });

  it("writes each object once and its status once, in nine API calls", async () => {
    // The first one reads what a replica reads once (the token key, the quotas, the template).
    const first = await handler.request("/instances/first?wait=30", { apiKey: "cold-key-000001" });
    expect(first.status).toBe(200);
    handler.counter.reset();
    const res = await handler.request("/instances/second?wait=30", { apiKey: "cold-key-000002" });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: "ready", created: true });
    expect(handler.counter.calls.sort()).toEqual([
      "create clientpods",
      "create configmaps", // its slot: the client's instance limit
      "create persistentvolumeclaims",
      "create pods",
      "create secrets",
      "get pods", // the warm read, which found none
      "patch clientpods", // its first status
      "patch pods", // the sighting of its server, with the phase
      "watch pods", // until it has an IP
    ]);
    // The status says what its Pod reached; the Pod's mirror says the same, so the next
    // request writes nothing.
    const clientPod = (await custom.getNamespacedCustomObject({
      group: "gptme.ai",
      version: "v1",
      plural: "clientpods",
      namespace,
      name: body.name,
    })) as { status?: { phase?: string; lastActivity?: string; podIP?: string } };
    expect(clientPod.status).toMatchObject({ phase: "Running", lastActivity: expect.any(String) });
    expect(clientPod.status?.podIP).toMatch(/^127\./);
    const pod = await core.readNamespacedPod({ name: body.name, namespace });
    expect(pod.metadata?.annotations?.[ANNOTATION_PHASE]).toBe("Running");
    handler.counter.reset();
    const warm = await handler.request("/instances/second", { apiKey: "cold-key-000002" });
    expect(warm.status).toBe(200);
    expect(handler.counter.calls).toEqual(["get pods"]);
  });

  it("records the phase it has when the answer does not wait (202), and the next request the new one", async () => {
    const started = await handler.request("/instances/third?wait=0", { apiKey: "cold-key-000003" });
    expect(started.status).toBe(202);
    const { name } = await started.json();
    const phaseOf = async () =>
      (
        (await custom.getNamespacedCustomObject({
          group: "gptme.ai",
          version: "v1",
          plural: "clientpods",
          namespace,
          name,
        })) as { status?: { phase?: string } }
      ).status?.phase;
    expect(await phaseOf()).toBe("Pending");
    const ready = await handler.request("/instances/third?wait=30", { apiKey: "cold-key-000003" });
    expect(ready.status).toBe(200);
    await eventually(async () => ((await phaseOf()) === "Running" ? true : undefined), "PHASE");
  });
});
