import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reap } from "../../reaper/reap.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { REQUEST_TIMEOUT_MS } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigVia,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { FaultyLink, freePort, spawnHandler, waitHealthy } from "../support/process.js";

let podHealth: PodHealth | undefined;

describe("faults", () => {
  let namespace: string;

  beforeAll(async () => {
    namespace = await createTestNamespace("faults");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
  });

  afterAll(async () => {
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("a hanging API server: every request answers 503 within the call timeout, none hangs", async () => {
    const server = new URL(adminKubeConfig().getCurrentCluster()?.server ?? "");
    const link = new FaultyLink(await freePort(), {
      host: server.hostname,
      port: Number(server.port),
    });
    await link.up();
    const handler = spawnHandler({
      KUBECONFIG: kubeconfigVia(link.port),
      NAMESPACE: namespace,
      HTTP_PORT: String(await freePort()),
    });
    const key = { "x-api-key": "faults-key-00000001" };
    try {
      await waitHealthy(handler);
      expect((await fetch(`${handler.url}/instances/hang?wait=30`, { headers: key })).status).toBe(
        200,
      );

      await link.hang();
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await fetch(`${handler.url}/instances/hang?wait=30`, { headers: key });
          return {
            status: res.status,
            code: ((await res.json()) as { code?: string }).code,
            at: Date.now() - started,
          };
        }),
      );
      for (const a of answers) {
        expect(a).toMatchObject({ status: 503, code: "kubernetes_unavailable" });
        expect(a.at).toBeLessThan(REQUEST_TIMEOUT_MS + 2_000);
      }
      expect((await fetch(`${handler.url}/healthz`)).status).toBe(200);

      await link.down();
      await link.up();
      const back = await fetch(`${handler.url}/instances/hang?wait=30`, { headers: key });
      expect(back.status).toBe(200);
    } finally {
      handler.proc.kill("SIGKILL");
      await link.down();
    }
  });

  it("reap vs activity: 100 rounds of a touch between the reaper's read and its delete, nothing lost", async () => {
    const handler = startHandler(namespace, { ACTIVITY_INTERVAL: "0" });
    const key = "faults-key-00000002";
    const name = instanceNameOf(clientIdOf(key), "busy");
    const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
    const kube = handler.kube;
    try {
      expect((await handler.request("/instances/busy?wait=30", { apiKey: key })).status).toBe(200);
      let skipped = 0;
      for (let round = 0; round < 100; round++) {
        // The reaper will read the instance as idle for an hour...
        await custom.patchNamespacedCustomObjectStatus(
          {
            group: "gptme.ai",
            version: "v1",
            namespace,
            plural: "clientpods",
            name,
            body: { status: { lastActivity: new Date(Date.now() - 3600_000).toISOString() } },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        const summary = await reap(kube, {
          defaults: { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 },
          workspaceRetentionMs: 30 * 24 * 3600_000,
          dryRun: false,
          concurrency: 4,
          now: () => new Date(),
          log: createLogger({ level: "info", name: "fleet-reaper" }, new LogCapture()),
          // Its pod IP has no server: the probe finds it unreachable, so not working...
          probe: { timeoutMs: 2_000 },
          // ...and the client comes back before the delete.
          beforeWrite: async (action) => {
            expect(action.name).toBe(name);
            expect((await handler.request("/instances/busy", { apiKey: key })).status).toBe(200);
          },
        });
        expect(summary).toMatchObject({ deleted: 0, failed: 0 });
        skipped += summary.skipped;
        expect(await kube.clientPods.get(name)).toBeDefined();
      }
      expect(skipped).toBe(100);
      expect((await kube.pods.get(name))?.metadata?.deletionTimestamp).toBeUndefined();
    } finally {
      handler.close();
    }
  });
});
