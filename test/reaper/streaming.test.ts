import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  API_VERSION,
  type ClientPod,
  clientPodManifest,
  KIND,
} from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { ANNOTATION_POOL_MEMBER, LABEL_POD } from "../../shared/instance/parts.js";
import { Kube, type ListOptions } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  mergePatch,
  restrictedPodSpec,
} from "../support/cluster.js";
import { expireContinueTokens, localEtcdUrl } from "../support/etcd.js";
import { fleetServiceAccount } from "../support/rbac.js";
import { reapOnce } from "../support/reaper.js";

const KEY = "reaper-streaming-key-01";
const clientId = clientIdOf(KEY);
const HOUR = 3600_000;

/** A stand-in gptme-server on 127.0.0.1 that says it is idle, counting the probes it answers. */
async function idleServer(): Promise<{ server: Server; port: number; probes: () => number }> {
  let probes = 0;
  const server = createServer((req, res) => {
    if (req.url === "/api/v2/server/health") {
      probes++;
      res.setHeader("content-type", "application/json");
      res.end('{"generating_count":0}');
    } else if (req.url === "/api/v0/metrics") {
      res.end("gptme_server_sse_connections_active 0.0\n");
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, probes: () => probes };
}

// The reaper reads the fleet as two lists joined by name, a few pages at a time (here: pages
// of 4, so every kind of object falls on page boundaries), on the real API server, with the
// reaper's own ServiceAccount.
describe("reaper: a pass that reads the fleet page by page", () => {
  let namespace: string;
  let kube: Kube;
  let reaperKube: Kube;
  const admin = adminKube("default");
  let stand: Awaited<ReturnType<typeof idleServer>>;
  let adoptedStand: Awaited<ReturnType<typeof idleServer>>;

  /** A Pod no scheduler takes (its status is the test's to write), passing "restricted". */
  const podOf = (name: string, port: number, owner?: ClientPod): V1Pod => ({
    metadata: {
      name,
      labels: {
        "app.kubernetes.io/managed-by": "gptme-fleet",
        "gptme.ai/client": clientId,
      },
      ownerReferences: owner && [
        {
          apiVersion: API_VERSION,
          kind: KIND,
          name: owner.metadata.name,
          uid: owner.metadata.uid,
          controller: true,
        },
      ],
    },
    spec: restrictedPodSpec(
      { name: "gptme-server", ports: [{ name: "http", containerPort: port }] },
      { schedulerName: "nobody" },
    ),
  });

  const runPod = async (pod: V1Pod, phase = "Running") => {
    await kube.pods.create(pod);
    const name = pod.metadata?.name ?? "";
    await adminKubeConfig()
      .makeApiClient(CoreV1Api)
      .patchNamespacedPodStatus(
        { name, namespace, body: { status: { phase, podIP: "127.0.0.1" } } },
        mergePatch,
      );
  };

  /** An instance as the handler leaves it; its Pod named `podName` (a pool member's) if given. */
  const instance = async (
    instanceId: string,
    { idle = false, podName, phase = "Running", port = stand.port } = {} as {
      idle?: boolean;
      podName?: string;
      phase?: string;
      port?: number;
    },
  ) => {
    const name = instanceNameOf(clientId, instanceId);
    const manifest = clientPodManifest({ name, clientId, instanceId, podTemplate: "gptme-client" });
    if (podName) {
      manifest.metadata.annotations = { [ANNOTATION_POOL_MEMBER]: podName };
      Object.assign(manifest.metadata.labels, { [LABEL_POD]: podName });
    }
    const made = await kube.clientPods.create(manifest);
    if (!made.created) throw new Error(`${name} exists`);
    await kube.clientPods.patchStatus(name, {
      lastActivity: new Date(Date.now() - (idle ? 2 * HOUR : 0)).toISOString(),
    });
    await runPod(podOf(podName ?? name, port, made.object), phase);
    return name;
  };

  const names = async () => ({
    clientPods: (await kube.clientPods.list()).items.map((cp) => cp.metadata.name).sort(),
    pods: (await kube.pods.list()).items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => p.metadata?.name ?? "")
      .sort(),
  });

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper-stream");
    kube = adminKube(namespace);
    reaperKube = new Kube(
      credentialsOf(await fleetServiceAccount(namespace, "fleet-reaper")),
      namespace,
    );
    stand = await idleServer();
    adoptedStand = await idleServer();
  });

  afterAll(async () => {
    stand.server.close();
    adoptedStand.server.close();
    kube.close();
    reaperKube.close();
    admin.close();
    await deleteTestNamespace(namespace);
  });

  it("deletes the idle, the ended and the orphaned across page boundaries, and keeps Pods of instances named otherwise", async () => {
    const kept: string[] = [];
    const idle: string[] = [];
    for (let i = 0; i < 20; i++) {
      const name = await instance(`s${i}`, { idle: i % 4 === 0 });
      (i % 4 === 0 ? idle : kept).push(name);
    }
    // Instances made from pool members: their Pods keep the members' names, elsewhere in
    // the Pod list. One in use, one idle (probed where its own Pod runs), one whose Pod ended.
    const inUse = await instance("adopted-in-use", { podName: "gptme-pool-00000000000000a1" });
    const adoptedIdle = await instance("adopted-idle", {
      idle: true,
      podName: "gptme-pool-00000000000000a2",
      port: adoptedStand.port,
    });
    const adoptedEnded = await instance("adopted-ended", {
      podName: "gptme-pool-00000000000000a3",
      phase: "Failed",
    });
    // Orphans, as after `kubectl delete cpod --cascade=orphan` (no owner reference left), at
    // both ends of the list and among the pool's names.
    const orphans = [
      "gptme-client-0000000000000000",
      "gptme-client-ffffffffffffffff",
      "gptme-pool-0000000000000001",
    ];
    for (const orphan of orphans) await runPod(podOf(orphan, stand.port));

    const { summary, lines } = await reapOnce(reaperKube, { pageSize: 4 });

    expect(summary).toMatchObject({
      checked: 23,
      deleted: 6 + 1 + 3,
      failed: 0,
      skipped: 0,
      reaped: { idle: 6, "pod-ended": 1, orphan: 3 },
    });
    // The idle adopted instance was asked at its own Pod's address before it went.
    expect(adoptedStand.probes()).toBe(1);
    expect(lines.find((l) => l.name === adoptedIdle)).toMatchObject({
      result: "deleted",
      reason: "idle",
      generating: 0,
    });
    expect(await names()).toEqual({
      clientPods: [...kept, inUse].sort(),
      pods: [...kept, "gptme-pool-00000000000000a1"].sort(),
    });
    expect(lines.filter((l) => l.name === adoptedEnded).map((l) => l.reason)).toEqual([
      "pod-ended",
    ]);
  });

  it.skipIf(!localEtcdUrl())(
    "reads on after its continue tokens expire mid-pass (410 Gone), judging each instance once",
    async () => {
      const idle: string[] = [];
      for (let i = 0; i < 12; i++) {
        const name = await instance(`r${i}`, { idle: i % 3 === 0 });
        if (i % 3 === 0) idle.push(name);
      }
      const before = await names();
      const etcd = localEtcdUrl() ?? "";
      const collections = [
        `/api/v1/namespaces/${namespace}/pods`,
        `/apis/gptme.ai/v1/namespaces/${namespace}/clientpods`,
      ];
      let expired: Promise<void> | undefined;
      const original = { clientPods: reaperKube.clientPods.list, pods: reaperKube.pods.list };
      const expiring =
        <T>(list: (o: ListOptions) => Promise<T>) =>
        async (o: ListOptions) => {
          if (o.continue) {
            expired ??= expireContinueTokens(etcd, collections);
            await expired;
          }
          return list(o);
        };
      reaperKube.clientPods.list = expiring(reaperKube.clientPods.list.bind(reaperKube.clientPods));
      reaperKube.pods.list = expiring(reaperKube.pods.list.bind(reaperKube.pods));
      try {
        const { summary, lines, all } = await reapOnce(reaperKube, { pageSize: 3 });
        expect(summary).toMatchObject({
          checked: before.clientPods.length,
          deleted: idle.length,
          skipped: 0,
          failed: 0,
          reaped: { idle: idle.length },
        });
        // Each idle instance judged once: one line each, nothing deleted twice or missed.
        expect(
          lines
            .filter((l) => l.result === "deleted")
            .map((l) => l.name)
            .sort(),
        ).toEqual([...idle].sort());
        expect(await names()).toEqual({
          clientPods: before.clientPods.filter((n) => !idle.includes(n)),
          pods: before.pods.filter((n) => !idle.includes(n)),
        });
        // Both lists started again, from where they were.
        const restarts = all.filter((l) => l.msg.includes("continue token expired"));
        expect(restarts.map((l) => l.what).sort()).toEqual(["clientpods", "pods"]);
        expect(restarts.every((l) => l.resumed === true)).toBe(true);
      } finally {
        reaperKube.clientPods.list = original.clientPods;
        reaperKube.pods.list = original.pods;
      }
    },
    120_000,
  );

  it("stops starting work at its time limit and leaves the rest to the next pass", async () => {
    const idle: string[] = [];
    for (let i = 0; i < 6; i++) idle.push(await instance(`t${i}`, { idle: true }));
    const before = await names();
    // A limit that passes before the first page is read: nothing is judged, nothing deleted.
    const cut = await reapOnce(reaperKube, { pageSize: 4, timeLimitMs: 1 });
    expect(cut.summary).toMatchObject({ complete: false, deleted: 0, failed: 0 });
    expect(cut.all.some((l) => l.msg.includes("reached its time limit"))).toBe(true);
    expect(await names()).toEqual(before);
    // The next pass, in time, finishes the job.
    const next = await reapOnce(reaperKube, { pageSize: 4 });
    expect(next.summary).toMatchObject({ complete: true, deferred: 0, deleted: idle.length });
    expect((await names()).clientPods).toEqual(before.clientPods.filter((n) => !idle.includes(n)));
  });
});
