import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminKube,
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";
import { reapOnce } from "../support/reaper.js";

const KEY = "gateway-heal-key-0001";

// A Pod that goes away under its instance (a drain, an eviction, a lost node, a rollout):
// the next gateway request starts it again, once across replicas, and is held until the new
// gptme-server answers; the gateway still never creates an instance.
describe("the gateway heals a missing Pod", () => {
  let namespace: string;
  const replicas: { handler: TestHandler; http: { url: string; close(): Promise<void> } }[] = [];
  const servers: GptmeServer[] = [];
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;

  const podOf = (name: string) =>
    core.readNamespacedPod({ name, namespace }).catch(() => undefined);
  const gateway = (replica: number, path: string, token = instance.endpoint.token) =>
    fetch(`${replicas[replica]?.http.url}${instance.endpoint.path}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
  /** Deletes the Pod at once and stops its server, as a node drain followed by the kubelet would. */
  const losePod = async (name: string, server?: GptmeServer) => {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
    await server?.stop();
    await eventually(async () => ((await podOf(name)) ? undefined : true), `${name} to go`);
  };
  const start = async (id: string) => {
    const { handler } = replicas[0] as { handler: TestHandler };
    const body = await (await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY })).json();
    await eventually(async () => (await podOf(body.name))?.status?.podIP, "a pod IP");
    const server = await runInstancePod(namespace, body.name);
    servers.push(server);
    return { body, server };
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("gateway-heal");
    await installTemplate(namespace);
    for (let i = 0; i < 2; i++) {
      const handler = startHandler(namespace, { GATEWAY_HOLD: "30s" });
      replicas.push({ handler, http: await listenHandler(handler) });
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const { handler, http } of replicas) {
      await http.close();
      handler.close();
    }
    await deleteTestNamespace(namespace);
  });

  it("starts the Pod again once, across two replicas, and answers from the new gptme-server", async () => {
    const first = await start("healed");
    instance = first.body;
    expect((await gateway(0, "/api/v2/conversations")).status).toBe(200);
    const before = (await podOf(instance.name))?.metadata?.uid;
    await losePod(instance.name, first.server);
    // Past the gateway's lookup cache (1 s), which may still hold the old Pod.
    await new Promise((r) => setTimeout(r, 1_100));
    for (const { handler } of replicas) handler.counter.reset();

    // Two clients on each replica, at once.
    const answers = [0, 1, 0, 1].map((replica) => gateway(replica, "/api/v2/conversations"));
    // The kubelet's part: run the new Pod's container once it exists.
    const pod = await eventually(async () => {
      const p = await podOf(instance.name);
      return p?.status?.podIP && p.metadata?.uid !== before ? p : undefined;
    }, "the new Pod");
    servers.push(await runInstancePod(namespace, instance.name));
    const responses = await Promise.all(answers);
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(Array.isArray(await res.json())).toBe(true);
    }
    // One Pod: the one the test's kubelet started, never replaced since.
    expect((await podOf(instance.name))?.metadata?.uid).toBe(pod.metadata?.uid);
    for (const { handler, http } of replicas) {
      const metrics = await (await fetch(`${http.url}/metrics`)).text();
      expect(metrics).toMatch(/^fleet_instances_replaced_total\{plan="default"\} 0$/m);
      // Each replica tried one create at most (the loser's answered 409 and it used the winner's).
      expect(handler.counter.calls.filter((c) => c === "create pods").length).toBeLessThanOrEqual(
        1,
      );
    }
    // The token and the instance are the ones the client had.
    const again = await (
      await replicas[1]?.handler.request("/instances/healed?wait=0", { apiKey: KEY })
    )?.json();
    expect(again).toMatchObject({ name: instance.name, status: "ready" });
    expect(again.endpoint.token).toBe(instance.endpoint.token);
  });

  it("never brings back a deleted instance, and a wrong token heals nothing", async () => {
    const { body, server } = await start("gone-for-good");
    instance = body;
    await losePod(body.name, server);
    expect((await gateway(0, "/api/v2/conversations", "x".repeat(43))).status).toBe(401);
    expect(await podOf(body.name)).toBeUndefined();
    await replicas[0]?.handler.request("/instances/gone-for-good", {
      method: "DELETE",
      apiKey: KEY,
    });
    const res = await gateway(1, "/api/v2/conversations");
    expect(res.status).toBe(401);
    expect(await podOf(body.name)).toBeUndefined();
    expect(await clientPodNames(namespace)).not.toContain(body.name);
  });

  it("leaves an instance whose client never calls again to the reaper", async () => {
    const { body, server } = await start("abandoned");
    await losePod(body.name, server);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await podOf(body.name)).toBeUndefined();
    const kube = adminKube(namespace);
    const { lines } = await reapOnce(kube, {
      defaults: { idleTimeoutMs: 1_000, maxLifetimeMs: 3600_000 },
    });
    expect(lines.find((l) => l.name === body.name)).toMatchObject({
      reason: "idle",
      result: "deleted",
      unreachable: "no running Pod with an IP",
    });
    kube.close();
  });
});
