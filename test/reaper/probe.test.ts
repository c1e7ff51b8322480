import { createServer, type Server, type Socket } from "node:net";
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import pLimit from "p-limit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReapOptions } from "../../reaper/options.js";
import { reap } from "../../reaper/reap.js";
import { instancePortOf } from "../../shared/instance/pod-spec.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKube,
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubeconfigPath,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler, type TestHandler } from "../support/fleet.js";
import {
  assertLocal,
  EventStream,
  type GptmeServer,
  podIpOf,
  runInstancePod,
} from "../support/gptme.js";
import { kubectlTable } from "../support/kubectl.js";

const KEY = "reaper-probe-key-0001";
const ADMIN_TOKEN = "reaper-probe-admin-token-0001";
const HOUR = 3600_000;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

// The reaper asks each idle instance's real gptme-server (PyPI's, run at the KWOK pod's
// loopback IP) whether it is working, before it deletes it.
describe("reaper probes idle instances before deleting them", () => {
  let namespace: string;
  let handler: TestHandler;
  let kube: Kube;
  const servers: GptmeServer[] = [];
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const crd = () => ({ group: "gptme.ai", version: "v1", namespace, plural: "clientpods" });

  // biome-ignore lint/suspicious/noExplicitAny: the ClientPod as kubectl would show it
  const clientPod = async (name: string): Promise<any> =>
    custom.getNamespacedCustomObject({ ...crd(), name });
  const idleSince = (name: string, ago = 2 * HOUR) =>
    custom.patchNamespacedCustomObjectStatus(
      {
        ...crd(),
        name,
        body: { status: { lastActivity: new Date(Date.now() - ago).toISOString() } },
      },
      mergePatch,
    );
  const instance = async (id: string) => {
    // Nothing answers at its pod IP until a test runs its gptme-server: starting (202).
    const response = await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY });
    expect(response.status).toBe(202);
    // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
    const body = (await response.json()) as any;
    // Running, with an IP (where its gptme-server would answer), as the reaper meets it.
    await podIpOf(namespace, body.name);
    return body;
  };
  const run = async (options: Partial<ReapOptions> = {}) => {
    const logs = new LogCapture();
    const summary = await reap(kube, {
      defaults: { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * HOUR },
      workspaceRetentionMs: 30 * 24 * 3600_000,
      dryRun: false,
      concurrency: 4,
      now: () => new Date(),
      log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
      probe: { timeoutMs: 2_000 },
      ...options,
    });
    return { summary, lines: logs.lines.map((l) => JSON.parse(l)) };
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper-probe");
    await installTemplate(namespace);
    handler = startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: "60", ADMIN_TOKEN });
    kube = adminKube(namespace);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    handler?.close();
    kube?.close();
    await deleteTestNamespace(namespace);
  });

  const admin = async (name: string) =>
    (
      await handler.request(`/admin/pods/${name}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json();
  const cpodRow = (name: string) =>
    kubectlTable(kubeconfigPath(), ["clientpods", "-n", namespace, name])[0];

  it("keeps an instance whose client holds an event stream open, and reaps it once closed", async () => {
    const { name } = await instance("streaming");
    // Before anyone used it, `kubectl get cpod` already says how it stands and when it goes.
    const fresh = await clientPod(name);
    const row = cpodRow(name);
    expect(row).toMatchObject({
      PHASE: "Pending",
      "LAST ACTIVITY": expect.stringMatching(/^\d+s$/),
      REAPER: "",
    });
    expect(Date.parse(row?.EXPIRES ?? "")).toBe(
      Date.parse(fresh.metadata.creationTimestamp) + 30 * 60_000,
    );
    expect(await admin(name)).toMatchObject({ expiryReason: "idle", lastReap: null });
    const server = await runInstancePod(namespace, name);
    servers.push(server);
    // The client talks to its gptme-server, then only listens: no request reaches the fleet.
    const auth = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
    const put = await fetch(`${server.url}/api/v2/conversations/listening`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ messages: [] }),
    });
    const { session_id: session } = (await put.json()) as { session_id: string };
    const abort = new AbortController();
    const stream = new EventStream(
      await fetch(
        `${server.url}/api/v2/conversations/listening/events?session_id=${session}&token=${server.token}`,
        { signal: abort.signal },
      ),
    );
    await stream.next((e) => e.type === "connected", 5_000);
    await idleSince(name);

    // A dry run asks too, and writes nothing.
    const versionBefore = (await clientPod(name)).metadata.resourceVersion;
    const dry = await run({ dryRun: true });
    expect(dry.summary).toMatchObject({ deleted: 0, skipped: 1, busy: 1, unreachable: 0 });
    expect(dry.lines.find((l) => l.name === name)).toMatchObject({
      reason: "busy",
      result: "skipped",
      dryRun: true,
      generating: 0,
      sseConnections: 1,
    });
    expect((await clientPod(name)).metadata.resourceVersion).toBe(versionBefore);

    // A client touches it after the probe, before the reaper records it busy: its own,
    // fresher activity stands, and the reaper writes nothing.
    const raced = await run({
      beforeWrite: async (action) => {
        if (action.name === name) await idleSince(name, 0);
      },
    });
    expect(raced.summary).toMatchObject({ deleted: 0, skipped: 1, busy: 1, failed: 0 });
    expect(raced.lines.find((l) => l.name === name)).toMatchObject({
      reason: "busy",
      result: "skipped",
      detail: "changed since read",
    });
    expect((await clientPod(name)).status.lastReap).toBeUndefined();

    await idleSince(name);
    const started = Date.now();
    const kept = await run();
    expect(kept.summary).toMatchObject({ checked: 1, deleted: 0, skipped: 1, busy: 1, failed: 0 });
    expect(kept.lines.find((l) => l.name === name)).toMatchObject({
      reason: "busy",
      result: "skipped",
      detail: "activity recorded",
      generating: 0,
      sseConnections: 1,
    });
    // Its activity is written, so the next pass and expiresAt see it as active; and why.
    const status = (await clientPod(name)).status;
    expect(Date.parse(status.lastActivity)).toBeGreaterThanOrEqual(started - 1_000);
    expect(status.lastReap).toEqual({
      at: status.lastActivity,
      verdict: "busy",
      detail: "generating 0, event streams 1",
    });
    // Why is it alive? The admin API and kubectl both say.
    const expiresAt = new Date(Date.parse(status.lastActivity) + 30 * 60_000).toISOString();
    expect(await admin(name)).toMatchObject({
      lastActivity: status.lastActivity,
      expiresAt,
      expiryReason: "idle",
      lastReap: {
        at: status.lastActivity,
        verdict: "busy",
        detail: "generating 0, event streams 1",
      },
    });
    expect(Date.parse(status.expiresAt)).toBe(Date.parse(expiresAt));
    expect(cpodRow(name)).toMatchObject({ REAPER: "busy", EXPIRES: status.expiresAt });

    // The client closes its tab. gptme-server notices a dead stream at its next write (a
    // keepalive, up to ~15 s later), and from then on the instance is idle again.
    abort.abort();
    await eventually(async () => {
      const metrics = await (await fetch(`${server.url}/api/v0/metrics`)).text();
      return /^gptme_server_sse_connections_active 0(\.0)?$/m.test(metrics) ? true : undefined;
    }, "the server to count the stream closed");
    await idleSince(name);
    const reaped = await run();
    expect(reaped.summary).toMatchObject({ deleted: 1, busy: 0, unreachable: 0, failed: 0 });
    expect(reaped.lines.find((l) => l.name === name)).toMatchObject({
      reason: "idle",
      result: "deleted",
      generating: 0,
      sseConnections: 0,
    });
    expect(await clientPodNames(namespace)).not.toContain(name);
    // Its pod is gone: free the IP for whichever pod KWOK hands it to next.
    await server.stop();
  }, 90_000);

  it("deletes an instance whose pod answers nothing, within the probe's bound", async () => {
    const { name } = await instance("silent");
    await idleSince(name);
    const started = performance.now();
    const { summary, lines } = await run();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(summary).toMatchObject({ deleted: 1, unreachable: 1, busy: 0, failed: 0 });
    expect(lines.find((l) => l.name === name)).toMatchObject({
      reason: "idle",
      result: "deleted",
      unreachable: "health: ECONNREFUSED; metrics: ECONNREFUSED",
    });
    expect(await clientPodNames(namespace)).not.toContain(name);
  });

  it("reaps 50 instances that accept and never answer in far less than 50 bounds", async () => {
    const limit = pLimit(8);
    const names = await Promise.all(
      Array.from({ length: 50 }, (_, i) => limit(async () => (await instance(`hang-${i}`)).name)),
    );
    // Each pod's IP and port accept connections and never say a word: the worst a probe meets.
    const sockets: Socket[] = [];
    const listeners: Server[] = [];
    try {
      for (const name of names) {
        const host = await podIpOf(namespace, name);
        const pod = (await kube.pods.get(name)) as V1Pod;
        assertLocal(host);
        const listener = createServer((socket) => sockets.push(socket));
        await new Promise<void>((resolve) => listener.listen(instancePortOf(pod), host, resolve));
        listeners.push(listener);
      }
      await Promise.all(names.map((name) => idleSince(name)));
      const started = performance.now();
      const { summary, lines } = await run({ concurrency: 10, probe: { timeoutMs: 1_000 } });
      const seconds = (performance.now() - started) / 1000;
      console.log(`50 hanging instances, bound 1 s, concurrency 10: ${seconds.toFixed(2)} s`);
      expect(summary).toMatchObject({ checked: 50, deleted: 50, unreachable: 50, failed: 0 });
      expect(
        lines.filter(
          (l) =>
            l.unreachable === "health: no answer within 1000 ms; metrics: no answer within 1000 ms",
        ),
      ).toHaveLength(50);
      // 50 bounds in a row would be 50 s; ten at a time, five bounds and the deletes.
      expect(seconds).toBeLessThan(10);
      expect(seconds).toBeGreaterThanOrEqual(5);
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const listener of listeners) listener.close();
    }
    expect(await clientPodNames(namespace)).toEqual([]);
  }, 120_000);

  it("never deletes an instance touched after its probe said idle", async () => {
    const { name } = await instance("racy");
    servers.push(await runInstancePod(namespace, name));
    await idleSince(name);
    const { summary, lines } = await run({
      // The probe found the server idle; the client comes back before the delete.
      beforeWrite: async (action) => {
        if (action.name === name) await idleSince(name, 0);
      },
    });
    expect(summary).toMatchObject({ deleted: 0, skipped: 1, busy: 0, failed: 0 });
    expect(lines.find((l) => l.name === name)).toMatchObject({
      reason: "idle",
      generating: 0,
      sseConnections: 0,
      result: "skipped",
      detail: "changed since read",
    });
    expect(await clientPodNames(namespace)).toContain(name);
  });
});
