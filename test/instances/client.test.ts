import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const KEY = "client-key-AAAAAAAA";
const OTHER_KEY = "client-key-BBBBBBBB";

describe("client API on the real control plane", () => {
  let namespace: string;
  let handler: TestHandler;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);

  const clientPods = async () =>
    (
      (await custom.listNamespacedCustomObject({
        group: "gptme.ai",
        version: "v1",
        namespace,
        plural: "clientpods",
      })) as { items: { metadata: { name: string; uid: string } }[] }
    ).items;
  const pods = async () => (await core.listNamespacedPod({ namespace })).items;

  beforeAll(async () => {
    namespace = await createTestNamespace("client");
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

  it("creates an instance and answers 200 with its connection once the pod is Ready", async () => {
    const res = await handler.request("/instances/first?wait=30", { apiKey: KEY });
    expect(res.status).toBe(200);
    const body = await res.json();
    const name = instanceNameOf(clientIdOf(KEY), "first");
    expect(body).toMatchObject({ name, instanceId: "first", status: "ready", created: true });
    expect(body.connection.port).toBe(5700);
    expect(body.connection.url).toBe(`http://${body.connection.host}:5700`);
    const pod = await core.readNamespacedPod({ name, namespace });
    expect(body.connection.host).toBe(pod.status?.podIP);
    expect(Date.parse(body.expiresAt) - Date.parse(body.lastActivity)).toBe(30 * 60 * 1000);
  });

  it("builds the Pod under the restricted standard with resources, labels and an owner", async () => {
    const name = instanceNameOf(clientIdOf(KEY), "first");
    const pod: V1Pod = await core.readNamespacedPod({ name, namespace });
    const clientId = clientIdOf(KEY);
    expect(pod.metadata?.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/client": clientId,
      "gptme.ai/instance": "first",
    });
    const owner = pod.metadata?.ownerReferences?.[0];
    expect(owner).toMatchObject({ kind: "ClientPod", name, controller: true });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const c of pod.spec?.containers ?? []) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.resources?.limits).toEqual({ cpu: "1", memory: "1Gi" });
      expect(c.resources?.requests).toEqual({ cpu: "1", memory: "1Gi" });
    }
  });

  it("answers a warm request with a single API call", async () => {
    handler.counter.reset();
    const res = await handler.request("/instances/first", { apiKey: KEY });
    expect(res.status).toBe(200);
    expect((await res.json()).created).toBe(false);
    expect(handler.counter.calls).toEqual(["get pods"]);
  });

  it("answers the same through the path-key route", async () => {
    const res = await handler.request(`/api/v1/${encodeURIComponent(KEY)}/instances/first`);
    expect(res.status).toBe(200);
    expect((await res.json()).name).toBe(instanceNameOf(clientIdOf(KEY), "first"));
  });

  it("answers 202 with Retry-After while the pod starts, when told not to wait", async () => {
    const res = await handler.request("/instances/quick?wait=0", { apiKey: KEY });
    expect(res.status).toBe(202);
    expect(res.headers.get("retry-after")).toBe("2");
    const body = await res.json();
    expect(body.status).toBe("starting");
    expect(body.created).toBe(true);
  });

  it("is idempotent across two handler instances", async () => {
    const other = startHandler(namespace);
    try {
      const a = await (await handler.request("/instances/shared?wait=30", { apiKey: KEY })).json();
      const b = await (await other.request("/instances/shared?wait=30", { apiKey: KEY })).json();
      expect(b.name).toBe(a.name);
      expect(a.created).toBe(true);
      expect(b.created).toBe(false);
      const named = (await clientPods()).filter((cp) => cp.metadata.name === a.name);
      expect(named).toHaveLength(1);
    } finally {
      other.close();
    }
  });

  it("makes exactly one ClientPod and one Pod for 50 concurrent requests", async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        handler.request("/instances/storm?wait=30", { apiKey: OTHER_KEY }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(bodies.filter((b) => b.created)).toHaveLength(1);
    const name = instanceNameOf(clientIdOf(OTHER_KEY), "storm");
    expect((await clientPods()).filter((cp) => cp.metadata.name === name)).toHaveLength(1);
    expect((await pods()).filter((p) => p.metadata?.name === name)).toHaveLength(1);
    // One workspace, new to every one of the 50 answers, whichever replica of the race made it.
    expect(new Set(bodies.map((b) => JSON.stringify(b.workspace)))).toEqual(
      new Set([JSON.stringify({ name, state: "new" })]),
    );
    const claims = await core.listNamespacedPersistentVolumeClaim({ namespace });
    expect(claims.items.filter((c) => c.metadata?.name === name)).toHaveLength(1);
  });

  it("recreates a pod deleted behind its back", async () => {
    const name = instanceNameOf(clientIdOf(KEY), "first");
    const before = await core.readNamespacedPod({ name, namespace });
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
    await eventually(
      async () =>
        (await pods()).some((p) => p.metadata?.uid === before.metadata?.uid) ? undefined : true,
      "the pod to be gone",
    );
    const res = await handler.request("/instances/first?wait=30", { apiKey: KEY });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.created).toBe(true);
    const after = await core.readNamespacedPod({ name, namespace });
    expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
    // The same instance over the same claim: its workspace is still the one made for it.
    expect(body.workspace).toEqual({ name, state: "new" });
    expect(after.spec?.volumes).toContainEqual({
      name: "workspace",
      persistentVolumeClaim: { claimName: name },
    });
  });

  it("repairs a ClientPod left without its Pod (a crash between the two writes)", async () => {
    const name = instanceNameOf(clientIdOf(KEY), "shared");
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
    await eventually(
      async () => ((await pods()).some((p) => p.metadata?.name === name) ? undefined : true),
      "pod gone",
    );
    const res = await handler.request("/instances/shared?wait=30", { apiKey: KEY });
    expect(res.status).toBe(200);
    expect((await clientPods()).filter((cp) => cp.metadata.name === name)).toHaveLength(1);
    expect((await pods()).filter((p) => p.metadata?.name === name)).toHaveLength(1);
  });

  it("replaces a pod that ended", async () => {
    const name = instanceNameOf(clientIdOf(KEY), "shared");
    const before = await core.readNamespacedPod({ name, namespace });
    const replacedBefore = (await handler.metrics.instancesReplaced.get()).values[0]?.value ?? 0;
    await core.patchNamespacedPodStatus(
      { name, namespace, body: { status: { phase: "Failed" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const res = await handler.request("/instances/shared?wait=30", { apiKey: KEY });
    expect(res.status).toBe(200);
    const after = await core.readNamespacedPod({ name, namespace });
    expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
    expect((await handler.metrics.instancesReplaced.get()).values[0]?.value).toBe(
      replacedBefore + 1,
    );
  });

  it("lists only the caller's instances and deletes one", async () => {
    const mine = await (await handler.request("/instances", { apiKey: KEY })).json();
    const ids = mine.items.map((i: { instanceId: string }) => i.instanceId).sort();
    expect(ids).toEqual(["first", "quick", "shared"]);
    const theirs = await (await handler.request("/instances", { apiKey: OTHER_KEY })).json();
    expect(theirs.items.map((i: { instanceId: string }) => i.instanceId)).toEqual(["storm"]);

    const del = await handler.request("/instances/quick", { apiKey: KEY, method: "DELETE" });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({
      name: instanceNameOf(clientIdOf(KEY), "quick"),
      deleted: true,
      workspace: "kept",
    });
    const again = await handler.request("/instances/quick", { apiKey: KEY, method: "DELETE" });
    expect(again.status).toBe(404);
    expect((await again.json()).code).toBe("not_found");
  });

  it("leaves no raw API key in any object, log line, metric or error body", async () => {
    // Exercise the paths that see a key once more, errors included.
    await handler.request(`/api/v1/${KEY}/instances/first`);
    await handler.request(`/api/v1/${KEY}/instances/Not_Valid`);
    await handler.request(`/api/v1/${KEY}/nowhere`);
    const errorBodies = await Promise.all([
      handler.request("/instances/Not_Valid", { apiKey: KEY }).then((r) => r.text()),
      handler.request(`/api/v1/${KEY}/instances/Not_Valid`).then((r) => r.text()),
      handler.request(`/api/v1/${KEY}/no/such/route`).then((r) => r.text()),
    ]);
    const everything = JSON.stringify({
      clientPods: await custom.listNamespacedCustomObject({
        group: "gptme.ai",
        version: "v1",
        namespace,
        plural: "clientpods",
      }),
      pods: await core.listNamespacedPod({ namespace }),
      events: await core.listNamespacedEvent({ namespace }),
      logs: handler.logs.lines,
      metrics: await handler.metrics.registry.metrics(),
      errorBodies,
    });
    expect(handler.logs.lines.length).toBeGreaterThan(10);
    for (const key of [KEY, OTHER_KEY]) {
      expect(everything).not.toContain(key);
      expect(everything).not.toContain(encodeURIComponent(key));
    }
  });
});
