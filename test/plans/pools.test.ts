import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { indexMember } from "../../shared/actions/pool-members.js";
import { POOL_NAME_PREFIX } from "../../shared/instance/parts.js";
import { answersHealth, healthUrlOf } from "../../shared/instance/serving.js";
import type { Kube } from "../../shared/kube/client.js";
import { POOL_SELECTOR } from "../../shared/pool/member.js";
import { countOf, entriesOf, POOL_INDEX_NAME } from "../../shared/pool/member-index.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { bareTemplate, installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { poolPass } from "../support/pool.js";

// A pool per plan: each plan keeps its own members, made from its template, and a client
// claims only from its own plan's pool; a plan without one starts cold.

const TOKEN_KEY = "plans-pool-token-key-0123456789abcdef0123456789";
const PLANS = `
default: free
plans:
  free: {template: gptme-client, poolSize: 2}
  pro: {template: gptme-client-pro, poolSize: 1, workspaceSize: 2Gi}
  solo: {template: gptme-client, poolSize: 0}
`;

describe("a warm pool per plan", () => {
  let namespace: string;
  let health: PodHealth;
  let handler: TestHandler;
  let kube: Kube;
  let env: Record<string, string>;
  const core = () => adminKubeConfig().makeApiClient(CoreV1Api);
  const members = async () =>
    (await core().listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR })).items.filter(
      (p) => !p.metadata?.deletionTimestamp,
    );

  beforeAll(async () => {
    namespace = await createTestNamespace("plans-pool");
    health = answerPodHealth(namespace);
    await installTemplate(namespace);
    const pro = bareTemplate("gptme-client-pro");
    const container = pro.template?.spec?.containers[0];
    if (container) container.image = "ghcr.io/gptme/gptme-server:pro";
    await installTemplate(namespace, pro);
    const dir = mkdtempSync(join(tmpdir(), "plans-pool-"));
    writeFileSync(join(dir, "plans.yaml"), PLANS);
    writeFileSync(
      join(dir, "keys"),
      "pool-pro-key-00000001 pro\npool-solo-key-0000001 solo\npool-free-key-0000001\n",
    );
    env = {
      CLIENT_AUTH: "keys",
      API_KEYS_FILE: join(dir, "keys"),
      PLANS_FILE: join(dir, "plans.yaml"),
      INSTANCE_TOKEN_SECRET: TOKEN_KEY,
    };
    handler = startHandler(namespace, env);
    kube = adminKube(namespace);
  });

  afterAll(async () => {
    handler?.close();
    kube?.close();
    await health?.stop();
    await deleteTestNamespace(namespace);
  });

  it("keeps each plan's poolSize members, from its template, labelled with the plan", async () => {
    const summary = await poolPass(namespace, env, 0);
    expect(summary).toMatchObject({ started: 3, failed: 0 });
    // Running, and answered for: the pod-health stand-in starts listening at a Pod's IP a
    // moment after the Pod has one, and the pass asks each member once.
    const pods = await eventually(async () => {
      const live = (await members()).filter((p) => p.status?.podIP);
      const answering = await Promise.all(
        live.map((p) => answersHealth(healthUrlOf(p) ?? "", 1_000)),
      );
      return live.length === 3 && answering.every(Boolean) ? live : undefined;
    }, "the members to run and answer");
    const byPlan = (plan: string) =>
      pods.filter((p) => p.metadata?.labels?.["gptme.ai/plan"] === plan);
    expect(byPlan("free")).toHaveLength(2);
    expect(byPlan("pro")).toHaveLength(1);
    expect(byPlan("solo")).toHaveLength(0);
    expect(byPlan("pro")[0]?.spec?.containers[0]?.image).toBe("ghcr.io/gptme/gptme-server:pro");
    for (const pod of byPlan("free")) {
      expect(pod.spec?.containers[0]?.image).toBe("ghcr.io/gptme/gptme-server:latest");
    }
    const proClaim = await kube.workspaces.get(byPlan("pro")[0]?.metadata?.name ?? "");
    expect(proClaim?.spec?.resources?.requests?.storage).toBe("2Gi");
    // A second pass finds every pool full, and records the members it sees answering in the
    // pool's index, under their plan and token key (a claim skips an entry of a key unknown to it).
    expect(await poolPass(namespace, env, 0)).toMatchObject({ started: 0, removed: 0, seen: 3 });
    const entries = entriesOf(await kube.configMaps.get(POOL_INDEX_NAME));
    expect([...entries.values()].every((e) => e.serving && e.tokenKeyId !== "")).toBe(true);
  });

  it("hands a client a member of its own plan only; a plan without a pool starts cold", async () => {
    const proMember = (await members()).find(
      (p) => p.metadata?.labels?.["gptme.ai/plan"] === "pro",
    );
    // Claims find members in the pool's index, read from the API server's cache: wait until
    // the cache lists every member, each under its plan.
    await eventually(async () => {
      const entries = entriesOf(await kube.configMaps.get(POOL_INDEX_NAME, { fromCache: true }));
      return countOf(entries, "pro") === 1 && countOf(entries, "free") === 2 ? true : undefined;
    }, "the pool's index to list the members");
    const pro = await eventually(async () => {
      const res = await handler.request("/instances/work?wait=0", {
        apiKey: "pool-pro-key-00000001",
      });
      const body = await res.json();
      return res.status < 300 ? body : undefined;
    }, "a pro instance");
    expect(pro).toMatchObject({ plan: "pro", created: true });
    // The pro member's Pod, adopted: its name is the member's.
    expect(pro.endpoint.path).toBe(`/api/v1/instances/${proMember?.metadata?.name}`);
    // The pro pool is empty now; a second pro client would start cold, never from free's.
    const solo = await handler.request("/instances/work?wait=0", {
      apiKey: "pool-solo-key-0000001",
    });
    const soloBody = await solo.json();
    expect(soloBody).toMatchObject({ plan: "solo", created: true });
    expect(soloBody.endpoint.path).not.toContain(POOL_NAME_PREFIX);
    const freeMembers = (await members())
      .filter((p) => p.metadata?.labels?.["gptme.ai/plan"] === "free")
      .map((p) => p.metadata?.name);
    expect(freeMembers).toHaveLength(2);

    // A key without a plan is the default plan's (free): it gets one of free's members.
    const free = await (
      await handler.request("/instances/work?wait=0", { apiKey: "pool-free-key-0000001" })
    ).json();
    expect(free).toMatchObject({ plan: "free", created: true });
    expect(freeMembers).toContain(free.endpoint.path.split("/").pop());

    const metrics = await handler.metrics.registry.metrics();
    expect(metrics).toMatch(/^fleet_pool_claims_total\{plan="pro"\} 1$/m);
    expect(metrics).toMatch(/^fleet_pool_claims_total\{plan="free"\} 1$/m);
    // A plan without a pool does not even look for one: no claim, no miss.
    expect(metrics).not.toMatch(/^fleet_pool_\w+\{plan="solo"\}/m);
    expect(metrics).toMatch(/^fleet_instances_created_total\{plan="solo"\} 1$/m);
  });

  it("drops the index's entries of members that are gone, so that replicas refill the pool", async () => {
    // A replica counts the index before it starts a member: entries of members that are gone
    // (a member deleted by hand, a claim whose follow-up failed) would keep it from refilling.
    const gone = `${POOL_NAME_PREFIX}00000000000000aa`;
    await indexMember(kube, gone, { uid: "gone", tokenKeyId: "k", plan: "free", serving: true });
    // The claims of the test before finish after their answers: the member's index entry
    // goes, then its ClientPod. Until then a claimed member is still indexed, and its entry
    // would go by its claim, not by the pass. Its Pod left the pool at once: wait until every
    // member's ClientPod names a Pod still in the pool.
    await eventually(async () => {
      const inPool = new Set((await members()).map((pod) => pod.metadata?.name));
      const memberRecords = (await kube.clientPods.list({ labelSelector: POOL_SELECTOR })).items;
      return memberRecords.every((cp) => inPool.has(cp.metadata.name)) || undefined;
    }, "the claims' follow-ups");
    // A member still offered (in the index).
    const offered = entriesOf(await kube.configMaps.get(POOL_INDEX_NAME));
    const [victim] = (await kube.clientPods.list({ labelSelector: POOL_SELECTOR })).items.filter(
      (cp) =>
        cp.metadata.labels?.["gptme.ai/plan"] === "free" &&
        offered.get(cp.metadata.name)?.uid === cp.metadata.uid,
    );
    expect(victim).toBeDefined();
    await kube.clientPods.delete(victim?.metadata.name ?? "");

    const summary = await poolPass(namespace, env, 0);
    expect(summary.unindexed).toBeGreaterThanOrEqual(2);
    const entries = entriesOf(await kube.configMaps.get(POOL_INDEX_NAME));
    expect(entries.has(gone)).toBe(false);
    expect(entries.has(victim?.metadata.name ?? "")).toBe(false);
    // Every entry left names a member that is there, under its uid.
    for (const [name, entry] of entries) {
      expect((await kube.clientPods.get(name))?.metadata.uid, name).toBe(entry.uid);
    }
  });
});
