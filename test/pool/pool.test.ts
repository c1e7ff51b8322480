import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REFILL_AFTER_CLAIM_MS } from "../../handler/pool/warm-pool.js";
import { POOL_NAME_PREFIX } from "../../shared/instance/parts.js";
import { POOL_SELECTOR } from "../../shared/pool/member.js";
import {
  adminKubeConfig,
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
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { poolPass } from "../support/pool.js";

const POOL_SIZE = 5;
// One key for every replica and the reaper, as the fleet's Secret would give them.
const TOKEN_KEY = "pool-test-token-key-0123456789abcdef0123456789";
const ENV = {
  CLIENT_AUTH: "open",
  POOL_SIZE: String(POOL_SIZE),
  INSTANCE_TOKEN_SECRET: TOKEN_KEY,
  MAX_INSTANCES: "100",
};

const core = () => adminKubeConfig().makeApiClient(CoreV1Api);
const custom = () => adminKubeConfig().makeApiClient(CustomObjectsApi);
type Cpod = {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { clientId: string };
};
const clientPods = async (namespace: string, labelSelector?: string) =>
  (
    (await custom().listNamespacedCustomObject({
      group: "gptme.ai",
      version: "v1",
      namespace,
      plural: "clientpods",
      labelSelector,
    })) as { items: Cpod[] }
  ).items;

/** Members ready to hand out: the pass made them and each has answered once. */
async function fullPool(namespace: string) {
  await poolPass(namespace, ENV, POOL_SIZE);
  return eventually(async () => {
    const pods = (await core().listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
      .items;
    const live = pods.filter((p) => p.status?.podIP && !p.metadata?.deletionTimestamp);
    return live.length >= POOL_SIZE ? live : undefined;
  }, "the pool's members to run");
}

describe("warm pool: two replicas, many new clients at once", () => {
  let namespace: string;
  let health: PodHealth;
  let one: TestHandler;
  let two: TestHandler;

  beforeAll(async () => {
    namespace = await createTestNamespace("pool");
    // Something answers every pod's health check (a kubelet's part): these tests are about
    // who gets which Pod, not about gptme-server itself.
    health = answerPodHealth(namespace);
    await installTemplate(namespace);
    one = startHandler(namespace, ENV);
    two = startHandler(namespace, ENV);
  });

  afterAll(async () => {
    one?.close();
    two?.close();
    await health?.stop();
    await deleteTestNamespace(namespace);
  });

  it("gives 30 new clients a Pod each, the first from the pool, and the next pass refills it", async () => {
    await fullPool(namespace);
    const answers = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const handler = i % 2 === 0 ? one : two;
        const res = await handler.request("/instances/default?wait=30", {
          apiKey: `pool-client-key-${String(i).padStart(4, "0")}`,
        });
        return { status: res.status, body: await res.json() };
      }),
    );
    for (const { status, body } of answers) {
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: "ready", created: true, workspace: { state: "new" } });
    }
    // Every client its own Pod: 30 distinct Pods, each owned by its own client's ClientPod.
    const podNames = answers.map((a) => a.body.endpoint.path.split("/").pop());
    expect(new Set(podNames).size).toBe(30);
    const pods = (await core().listNamespacedPod({ namespace })).items;
    for (const { body } of answers) {
      const podName = body.endpoint.path.split("/").pop();
      const pod = pods.find((p) => p.metadata?.name === podName);
      expect(pod?.metadata?.ownerReferences?.[0]?.name).toBe(body.name);
      expect(pod?.metadata?.labels?.["gptme.ai/pool"]).toBeUndefined();
    }
    const pooled = podNames.filter((n) => n.startsWith(POOL_NAME_PREFIX)).length;
    const claims = async (h: TestHandler) =>
      (await h.metrics.registry.getSingleMetric("fleet_pool_claims_total")?.get())?.values[0]
        ?.value ?? 0;
    // The 5 waiting members were handed out (and any replacement made meanwhile), the rest cold.
    expect(pooled).toBeGreaterThanOrEqual(POOL_SIZE);
    expect(pooled).toBe((await claims(one)) + (await claims(two)));

    // The claiming replicas' replacements settle; then one pass: exactly POOL_SIZE unclaimed
    // members, and no member ClientPod left for a claimed one.
    await new Promise((r) => setTimeout(r, REFILL_AFTER_CLAIM_MS + 3_000));
    const summary = await poolPass(namespace, ENV, POOL_SIZE);
    expect(summary.failed).toBe(0);
    const members = await clientPods(namespace, POOL_SELECTOR);
    expect(members).toHaveLength(POOL_SIZE);
    const memberPods = (await core().listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
      .items;
    expect(memberPods).toHaveLength(POOL_SIZE);
    for (const pod of memberPods) {
      expect(members.map((m) => m.metadata.uid)).toContain(pod.metadata?.ownerReferences?.[0]?.uid);
    }
    // And `kubectl get cpod` / the API show 30 instances of 30 clients besides the members.
    const instances = (await clientPods(namespace)).filter(
      (cp) => !cp.metadata.labels?.["gptme.ai/pool"],
    );
    expect(instances).toHaveLength(30);
    expect(new Set(instances.map((cp) => cp.spec.clientId)).size).toBe(30);
  }, 180_000);

  it("starts an instance over a kept workspace cold, never from the pool", async () => {
    await fullPool(namespace);
    const key = "pool-returning-key-0001";
    const first = await (await one.request("/instances/back?wait=30", { apiKey: key })).json();
    expect(first.status).toBe("ready");
    // Its workspace is labelled as the client's (a claim's follow-up, or the pass's).
    await eventually(async () => {
      const claim = await core().readNamespacedPersistentVolumeClaim({
        name: first.workspace.name,
        namespace,
      });
      return claim.metadata?.labels?.["gptme.ai/instance"] === "back" ? true : undefined;
    }, "the workspace to be the client's");
    expect((await one.request("/instances/back", { method: "DELETE", apiKey: key })).status).toBe(
      200,
    );
    const membersBefore = (await clientPods(namespace, POOL_SELECTOR)).map((m) => m.metadata.name);
    const again = await eventually(async () => {
      const res = await two.request("/instances/back?wait=30", { apiKey: key });
      const body = await res.json();
      return res.status === 200 && body.created ? body : undefined;
    }, "the instance to start again");
    expect(again.workspace).toEqual({ name: first.workspace.name, state: "kept" });
    const podName = again.endpoint.path.split("/").pop();
    expect(podName).toBe(again.name);
    expect(membersBefore).not.toContain(podName);
    const pod = await core().readNamespacedPod({ name: podName, namespace });
    const mounted = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim;
    expect(mounted?.claimName).toBe(first.workspace.name);
  }, 120_000);
});

// A real gptme-server behind a pool member, started with the member's Secret as its container
// would be: after the claim its token is the instance's, and opens nothing else.
describe("warm pool: a claimed member's token", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  const servers: GptmeServer[] = [];

  beforeAll(async () => {
    namespace = await createTestNamespace("pooltoken");
    await installTemplate(namespace);
    handler = startHandler(namespace, { ...ENV, WORKSPACES: "off" });
    http = await listenHandler(handler);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("opens only the instance it was claimed for, through the gateway, on the real server", async () => {
    await poolPass(namespace, { ...ENV, WORKSPACES: "off" }, 1);
    const [member] = (await core().listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
      .items;
    const memberName = member?.metadata?.name ?? "";
    servers.push(await runInstancePod(namespace, memberName));

    const mine = await (
      await handler.request("/instances/mine?wait=30", { apiKey: "pool-token-key-A-0001" })
    ).json();
    expect(mine, JSON.stringify(mine)).toMatchObject({ status: "ready", created: true });
    expect(mine.endpoint.path).toBe(`/api/v1/instances/${memberName}`);
    const other = await (
      await handler.request("/instances/other?wait=0", { apiKey: "pool-token-key-B-0001" })
    ).json();
    expect(other.endpoint.path).not.toBe(mine.endpoint.path);
    const via = (path: string, token: string) =>
      fetch(`${http.url}${path}/api/v2/conversations`, {
        headers: { authorization: `Bearer ${token}` },
      });
    // The claimed member answers its new client's token, through the gateway, as gptme-server.
    const opened = await via(mine.endpoint.path, mine.endpoint.token);
    expect(opened.status, await opened.clone().text()).toBe(200);
    // Another instance's token does not open it, nor does this token open another instance.
    expect((await via(mine.endpoint.path, other.endpoint.token)).status).toBe(401);
    expect((await via(other.endpoint.path, mine.endpoint.token)).status).toBe(401);
    // The member's own ClientPod is gone; the instance's names the member it adopted.
    await eventually(async () => {
      const members = await clientPods(namespace, POOL_SELECTOR);
      return members.some((m) => m.metadata.name === memberName) ? undefined : true;
    }, "the member's ClientPod to go");
  }, 120_000);
});
