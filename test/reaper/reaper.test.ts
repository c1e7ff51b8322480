import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reap } from "../../reaper/reap.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKube,
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { orphanPod } from "../support/reaper.js";

let podHealth: PodHealth | undefined;

const KEY = "reaper-key-00000001";
const name = (instance: string) => instanceNameOf(clientIdOf(KEY), instance);
const HOUR = 3600_000;
const defaults = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * HOUR };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

describe("reaper on the real control plane", () => {
  let namespace: string;
  let handler: TestHandler;
  let kube: Kube;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const crd = () => ({ group: "gptme.ai", version: "v1", namespace, plural: "clientpods" });

  const podNames = async () =>
    (await core.listNamespacedPod({ namespace })).items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => p.metadata?.name ?? "")
      .sort();
  const setLastActivity = (instance: string, when: Date) =>
    custom.patchNamespacedCustomObjectStatus(
      { ...crd(), name: name(instance), body: { status: { lastActivity: when.toISOString() } } },
      mergePatch,
    );
  const run = (options: { dryRun?: boolean; beforeWrite?: () => Promise<void> } = {}) => {
    const logs = new LogCapture();
    const summary = reap(kube, {
      defaults,
      workspaceRetentionMs: 30 * 24 * 3600_000,
      dryRun: options.dryRun ?? false,
      concurrency: 4,
      now: () => new Date(),
      log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
      probe: { timeoutMs: 2_000 },
      beforeWrite: options.beforeWrite,
    });
    return summary.then((s) => ({ summary: s, lines: logs.lines.map((l) => JSON.parse(l)) }));
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace);
    kube = adminKube(namespace);
    for (const instance of ["fresh", "idle", "ended", "old"]) {
      expect(
        (await handler.request(`/instances/${instance}?wait=30`, { apiKey: KEY })).status,
      ).toBe(200);
    }
    // Idle: last touched two hours ago. Old: active, but created before its lifetime override.
    await setLastActivity("idle", new Date(Date.now() - 2 * HOUR));
    await custom.patchNamespacedCustomObject(
      { ...crd(), name: name("old"), body: { spec: { maxLifetimeSeconds: 1 } } },
      mergePatch,
    );
    // creationTimestamp has whole seconds: let the one-second lifetime surely pass.
    await new Promise((r) => setTimeout(r, 2_000));
    await core.patchNamespacedPodStatus(
      { name: name("ended"), namespace, body: { status: { phase: "Failed" } } },
      mergePatch,
    );
    // An orphan: a fleet pod whose ClientPod is gone and which the garbage collector will not
    // take, as after `kubectl delete cpod --cascade=orphan` (which strips ownerReferences).
    await core.createNamespacedPod({
      namespace,
      body: orphanPod("gptme-client-00000000deadbeef", { "gptme.ai/client": clientIdOf(KEY) }),
    });
  });

  afterAll(async () => {
    handler?.close();
    kube?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("--dry-run reports what would go and changes nothing", async () => {
    const clientPodsBefore = await clientPodNames(namespace);
    const podsBefore = await podNames();
    const { summary, lines } = await run({ dryRun: true });
    expect(summary).toMatchObject({ checked: 4, deleted: 4, skipped: 0, failed: 0, dryRun: true });
    const actions = lines.filter((l) => l.msg === "reap");
    expect(actions.map((a) => [a.name, a.reason]).sort()).toEqual(
      [
        [name("idle"), "idle"],
        [name("ended"), "pod-ended"],
        [name("old"), "max-lifetime"],
        ["gptme-client-00000000deadbeef", "orphan"],
      ].sort(),
    );
    expect(actions.every((a) => a.dryRun === true)).toBe(true);
    expect(await clientPodNames(namespace)).toEqual(clientPodsBefore);
    expect(await podNames()).toEqual(podsBefore);
  });

  it("deletes the idle, the too old, the ended and the orphan, and keeps the fresh one", async () => {
    const { summary, lines } = await run();
    expect(summary).toMatchObject({ checked: 4, deleted: 4, skipped: 0, failed: 0, dryRun: false });
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    const idle = lines.find((l) => l.name === name("idle"));
    expect(idle).toMatchObject({
      reason: "idle",
      clientId: clientIdOf(KEY),
      result: "deleted",
      dryRun: false,
    });
    expect(idle.idleSeconds).toBeGreaterThanOrEqual(2 * 3600 - 5);
    expect(lines.at(-1)).toMatchObject({ msg: "summary", checked: 4, deleted: 4 });
    expect(await clientPodNames(namespace)).toEqual([name("fresh")]);
    expect(await podNames()).toEqual([name("fresh")]);
  });

  it("never deletes an instance touched between its read and its delete", async () => {
    expect((await handler.request("/instances/racy?wait=30", { apiKey: KEY })).status).toBe(200);
    await setLastActivity("racy", new Date(Date.now() - 2 * HOUR));
    const { summary, lines } = await run({
      // The client comes back after the reaper planned, before it deletes.
      beforeWrite: async () => {
        await setLastActivity("racy", new Date());
      },
    });
    expect(summary).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
    expect(lines.find((l) => l.name === name("racy"))).toMatchObject({
      result: "skipped",
      detail: "changed since read",
    });
    expect(await clientPodNames(namespace)).toContain(name("racy"));
    expect(await podNames()).toContain(name("racy"));
  });

  it("with --no-probe lets the clock decide alone (and --dry-run changes nothing)", async () => {
    await setLastActivity("racy", new Date(Date.now() - 2 * HOUR));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [resolve(import.meta.dirname, "../../dist/reaper/main.js"), "--no-probe", "--dry-run"],
      { env: { ...process.env, KUBECONFIG: kubeconfigPath(), NAMESPACE: namespace } },
    );
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ msg: "starting", probeTimeoutSeconds: null });
    const racy = lines.find((l) => l.name === name("racy"));
    expect(racy).toMatchObject({ reason: "idle", result: "deleted", dryRun: true });
    expect(racy).not.toHaveProperty("unreachable");
    expect(racy).not.toHaveProperty("generating");
    expect(lines.at(-1)).toMatchObject({ msg: "summary", deleted: 1, unreachable: 0, busy: 0 });
    expect(await clientPodNames(namespace)).toContain(name("racy"));
  });

  it("runs as a CLI: JSON lines on stdout, exit 0, flags over the environment", async () => {
    await setLastActivity("racy", new Date(Date.now() - 10 * 60_000));
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        resolve(import.meta.dirname, "../../dist/reaper/main.js"),
        "--idle-timeout",
        "5m",
        "--concurrency",
        "2",
        "--probe-timeout",
        "1500ms",
      ],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfigPath(),
          NAMESPACE: namespace,
          IDLE_TIMEOUT: "24h",
        },
      },
    );
    expect(stderr).toBe("");
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ msg: "starting", probeTimeoutSeconds: 1.5 });
    expect(lines.at(-1)).toMatchObject({
      msg: "summary",
      checked: 2,
      deleted: 1,
      busy: 0,
      // Its KWOK pod's IP has no server.
      unreachable: 1,
      failed: 0,
      dryRun: false,
    });
    expect(await clientPodNames(namespace)).toEqual([name("fresh")]);
  });

  it("exits 2 naming a bad flag", async () => {
    const result = await promisify(execFile)(
      process.execPath,
      [resolve(import.meta.dirname, "../../dist/reaper/main.js"), "--idle-timeout", "forever"],
      { env: { ...process.env, KUBECONFIG: kubeconfigPath(), NAMESPACE: namespace } },
    ).catch((error) => error);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("--idle-timeout");
  });
});
