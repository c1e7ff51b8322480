import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { abortedPass, recordPass } from "../../reaper/stats.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  mergePatch,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { fleetServiceAccount } from "../support/rbac.js";
import { orphanPod } from "../support/reaper.js";

const KEY = "reaper-stats-key-0001";
const name = (instance: string) => instanceNameOf(clientIdOf(KEY), instance);
const ORPHAN = "gptme-client-00000000feedf00d";
const STATS = "fleet-reaper-stats";
const HOUR = 3600_000;

describe("the reaper's stats: recorded by each pass, exported by the handler", () => {
  let namespace: string;
  let podHealth: PodHealth;
  let handler: TestHandler;
  /** The reaper's own ServiceAccount (04-rbac-reaper.yaml as shipped). */
  let reaperKc: KubeConfig;
  let reaperKubeconfig: string;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const crd = () => ({ group: "gptme.ai", version: "v1", namespace, plural: "clientpods" });

  const setLastActivity = (instance: string, when: Date) =>
    custom.patchNamespacedCustomObjectStatus(
      { ...crd(), name: name(instance), body: { status: { lastActivity: when.toISOString() } } },
      mergePatch,
    );
  const stats = async (): Promise<V1ConfigMap | undefined> =>
    core.readNamespacedConfigMap({ name: STATS, namespace }).catch((error) => {
      if (error.code === 404) return undefined;
      throw error;
    });
  /** The reaper CLI as the CronJob runs it, with the reaper's credentials; its JSON lines. */
  const reaperCli = async (...flags: string[]) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [resolve(import.meta.dirname, "../../dist/reaper/main.js"), "--no-probe", ...flags],
      { env: { ...process.env, KUBECONFIG: reaperKubeconfig, NAMESPACE: namespace } },
    );
    // biome-ignore lint/suspicious/noExplicitAny: log lines as a reader of the JSON sees them
    const lines: any[] = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    return lines;
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper-stats");
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace);
    for (const instance of ["first-idle", "second-idle", "too-old", "fresh"]) {
      expect(
        (await handler.request(`/instances/${instance}?wait=30`, { apiKey: KEY })).status,
      ).toBe(200);
    }
    await setLastActivity("first-idle", new Date(Date.now() - 2 * HOUR));
    // A fleet Pod no ClientPod owns (as after `kubectl delete cpod --cascade=orphan`).
    await core.createNamespacedPod({ namespace, body: orphanPod(ORPHAN) });
    reaperKc = await fleetServiceAccount(namespace, "fleet-reaper");
    reaperKubeconfig = join(mkdtempSync(join(tmpdir(), "fleet-reaper-kc-")), "kubeconfig");
    writeFileSync(reaperKubeconfig, reaperKc.exportConfig());
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("a dry run records nothing", async () => {
    const lines = await reaperCli("--dry-run");
    expect(lines.find((l) => l.msg === "summary")).toMatchObject({ deleted: 2, dryRun: true });
    expect(await stats()).toBeUndefined();
  });

  it("the first pass makes the ConfigMap with its deletions by reason", async () => {
    const lines = await reaperCli();
    expect(lines.find((l) => l.msg === "summary")).toMatchObject({ deleted: 2, failed: 0 });
    expect(lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
    const object = await stats();
    expect(object?.metadata?.labels).toEqual({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/kind": "reaper-stats",
    });
    expect(object?.data).toMatchObject({
      "reaped.idle": "1",
      "reaped.orphan": "1",
      "reaped.max-lifetime": "0",
      "keptBusy.idle": "0",
      failed: "0",
      passes: "1",
      passesAborted: "0",
    });
    const lastPass = Date.parse(object?.data?.lastPass ?? "");
    expect(Date.now() - lastPass).toBeLessThan(60_000);
    expect(object?.data?.lastSuccess).toBe(object?.data?.lastPass);
  });

  it("the second pass adds its own", async () => {
    await setLastActivity("second-idle", new Date(Date.now() - 2 * HOUR));
    await custom.patchNamespacedCustomObject(
      { ...crd(), name: name("too-old"), body: { spec: { maxLifetimeSeconds: 1 } } },
      mergePatch,
    );
    // creationTimestamp has whole seconds: let the one-second lifetime surely pass.
    await new Promise((r) => setTimeout(r, 2_000));
    const lines = await reaperCli();
    expect(lines.find((l) => l.msg === "summary")).toMatchObject({ deleted: 2, failed: 0 });
    expect(await clientPodNames(namespace)).toEqual([name("fresh")]);
    expect((await stats())?.data).toMatchObject({
      "reaped.idle": "2",
      "reaped.orphan": "1",
      "reaped.max-lifetime": "1",
      passes: "2",
      failed: "0",
    });
  });

  it("overlapping passes lose no count (a conflict is read again)", async () => {
    const logs = new LogCapture();
    const log = createLogger({ level: "debug", name: "fleet-reaper" }, logs);
    const recorders = Array.from({ length: 6 }, () => new Kube(credentialsOf(reaperKc), namespace));
    try {
      const recorded = await Promise.all(
        recorders.map((kube) =>
          recordPass(
            kube,
            {
              at: new Date(),
              reaped: { "workspace-retention": 1 },
              keptBusy: {},
              failed: 0,
              aborted: false,
            },
            log,
          ),
        ),
      );
      expect(recorded).toEqual([true, true, true, true, true, true]);
    } finally {
      for (const kube of recorders) kube.close();
    }
    const attempts = logs.lines.map((l) => JSON.parse(l)).map((l) => l.attempt);
    // Six writers read the same version at once: some had to read it again.
    expect(Math.max(...attempts)).toBeGreaterThan(1);
    expect((await stats())?.data).toMatchObject({
      "reaped.workspace-retention": "6",
      "reaped.idle": "2",
      passes: "8",
    });
  });

  it("a pass that could not finish counts as aborted, and the last success stays", async () => {
    const before = (await stats())?.data;
    const kube = new Kube(credentialsOf(reaperKc), namespace);
    try {
      const log = createLogger({ level: "info", name: "fleet-reaper" }, new LogCapture());
      expect(await recordPass(kube, abortedPass(new Date()), log)).toBe(true);
    } finally {
      kube.close();
    }
    const after = (await stats())?.data;
    expect(after).toMatchObject({ passes: "9", passesAborted: "1", failed: "0" });
    expect(after?.lastSuccess).toBe(before?.lastSuccess);
    expect(Date.parse(after?.lastPass ?? "")).toBeGreaterThan(Date.parse(before?.lastPass ?? ""));
  });

  it("a handler with its own credentials exports the counters on /metrics", async () => {
    const reader = startHandler(
      namespace,
      {},
      await fleetServiceAccount(namespace, "fleet-handler"),
    );
    try {
      const text = await (await reader.request("/metrics")).text();
      const lines = text.split("\n");
      expect(lines).toEqual(
        expect.arrayContaining([
          'fleet_reaper_reaped_total{reason="idle"} 2',
          'fleet_reaper_reaped_total{reason="orphan"} 1',
          'fleet_reaper_reaped_total{reason="max-lifetime"} 1',
          'fleet_reaper_reaped_total{reason="workspace-retention"} 6',
          'fleet_reaper_reaped_total{reason="pod-ended"} 0',
          'fleet_reaper_kept_busy_total{reason="idle"} 0',
          "fleet_reaper_failed_total 0",
          "fleet_reaper_passes_total 9",
          "fleet_reaper_passes_aborted_total 1",
        ]),
      );
      const data = (await stats())?.data ?? {};
      expect(lines).toContain(
        `fleet_reaper_last_pass_timestamp_seconds ${Date.parse(data.lastPass ?? "") / 1000}`,
      );
      expect(lines).toContain(
        `fleet_reaper_last_success_timestamp_seconds ${Date.parse(data.lastSuccess ?? "") / 1000}`,
      );
      // Scrapes within the cache's lifetime read nothing more.
      const reads = () => reader.counter.calls.filter((c) => c === "get configmaps").length;
      expect(reads()).toBe(1);
      await reader.request("/metrics");
      expect(reads()).toBe(1);
      expect(text).not.toContain("fleet_kubernetes_errors_total{");
    } finally {
      reader.close();
    }
  });

  it("a pass whose stats cannot be written still succeeds, and says so", async () => {
    // An immutable ConfigMap refuses every write (422): the pass must not notice beyond a warning.
    await core.deleteNamespacedConfigMap({ name: STATS, namespace });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: STATS }, immutable: true, data: { passes: "41" } },
    });
    const lines = await reaperCli();
    expect(lines.find((l) => l.msg === "summary")).toMatchObject({ failed: 0 });
    expect(lines.find((l) => l.level === "warn")).toMatchObject({
      msg: "could not record the pass",
      name: STATS,
    });
    expect((await stats())?.data).toEqual({ passes: "41" });
  });
});
