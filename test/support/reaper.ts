import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import type { ReapOptions } from "../../reaper/options.js";
import { reap } from "../../reaper/reap.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import { adminKubeConfig, restrictedPodSpec } from "./cluster.js";
import { LogCapture } from "./fleet.js";

const DAY = 86_400_000;

/**
 * One reaper pass over a test namespace with the fleet's defaults (30m idle, 24h lifetime,
 * 30d workspace retention, probing), `options` overriding; its summary, action lines and all
 * its log lines.
 */
export async function reapOnce(kube: Kube, options: Partial<ReapOptions> = {}) {
  const logs = new LogCapture();
  const summary = await reap(kube, {
    defaults: { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 },
    workspaceRetentionMs: 30 * DAY,
    dryRun: false,
    concurrency: 4,
    now: () => new Date(),
    log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
    probe: { timeoutMs: 2_000 },
    ...options,
  });
  // biome-ignore lint/suspicious/noExplicitAny: log lines as a reader of the JSON sees them
  const all: any[] = logs.lines.map((l) => JSON.parse(l));
  return { summary, lines: all.filter((l) => l.msg === "reap"), all };
}

/** Records on a workspace claim that it was last used `agoMs` ago (as if it had aged). */
export function lastUsedAgo(namespace: string, name: string, agoMs: number) {
  return adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .patchNamespacedPersistentVolumeClaim(
      {
        name,
        namespace,
        body: {
          metadata: {
            annotations: { "gptme.ai/last-used": new Date(Date.now() - agoMs).toISOString() },
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
}

/**
 * A fleet Pod that no ClientPod owns, as after `kubectl delete cpod --cascade=orphan` (which
 * strips ownerReferences): labelled as the fleet's, restricted as every pod here, `labels` added.
 */
export function orphanPod(name: string, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels: { "app.kubernetes.io/managed-by": "gptme-fleet", ...labels } },
    spec: restrictedPodSpec(),
  };
}
