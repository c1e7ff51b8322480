import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CoreV1Api } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { reap } from "../../reaper/reap.js";
import {
  API_VERSION,
  type ClientPod,
  clientPodManifest,
  KIND,
} from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { ANNOTATION_REVISION } from "../../shared/instance/revision.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import { mergePatch } from "./fast-api.js";
import {
  adminKube,
  adminKubeConfig,
  createNamespace,
  deleteNamespace,
  installTemplate,
  say,
} from "./lib.js";
import { type Stats, stats } from "./stats.js";

export interface RolloutRun {
  maxRollout: number;
  passes: number;
  /** The passes' own time, summed (the reaper's work, not the CronJob's schedule). */
  seconds: number;
  /** Each replacing pass's own time (ms): the last, which finds nothing, left out. */
  pass: Stats;
  /** API calls of all the passes, by "verb resource". */
  calls: Record<string, number>;
  replaced: number;
}

export interface RolloutBench {
  instances: number;
  runs: RolloutRun[];
  setupSeconds: number;
}

const CONCURRENCY = 20;

/**
 * A rollout over `instances` idle instances: every ClientPod with its Pod made from an older
 * revision, idle for two hours; the reaper's passes (in this process, its API calls counted)
 * with --max-rollout at each of `maxes`, until no Pod is outdated. As in the reaper-probe
 * benchmark, every Pod's IP and port is one listener answering as an idle gptme-server, and
 * the Pods have a scheduler nobody runs (their status is ours to write; deletes are immediate).
 * The fleet's Pods are made again (old revision) before each run.
 */
export async function rolloutAtScale(instances: number, maxes: number[]): Promise<RolloutBench> {
  const listener = createServer((req, res) => {
    if (req.url === "/api/v2/server/health") {
      res.setHeader("content-type", "application/json");
      res.end('{"generating_count":0}');
    } else if (req.url === "/api/v0/metrics") {
      res.end("gptme_server_sse_connections_active 0.0\n");
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as AddressInfo;
  const namespace = await createNamespace("bench-rollout");
  const kube = adminKube(namespace);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const limit = pLimit(32);
  const idleSince = new Date(Date.now() - 2 * 3600_000).toISOString();
  const owners: ClientPod[] = [];

  const oldPod = async (owner: ClientPod) => {
    const { name, uid } = owner.metadata;
    await kube.pods.create({
      metadata: {
        name,
        labels: {
          "app.kubernetes.io/managed-by": "gptme-fleet",
          "gptme.ai/client": owner.spec.clientId,
        },
        annotations: { [ANNOTATION_REVISION]: "0000000000" },
        ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name, uid, controller: true }],
      },
      spec: {
        schedulerName: "bench-unscheduled",
        containers: [
          { name: "gptme-server", image: "x", ports: [{ name: "http", containerPort: port }] },
        ],
      },
    });
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: { status: { phase: "Running", podIP: "127.0.0.1", podIPs: [{ ip: "127.0.0.1" }] } },
      },
      mergePatch,
    );
  };

  try {
    const setupStarted = performance.now();
    await installTemplate(namespace);
    say(`rollout: creating ${instances} idle instances in ${namespace}`);
    await Promise.all(
      Array.from({ length: instances }, (_, i) =>
        limit(async () => {
          const clientId = clientIdOf(`bench-key-${i % 1000}`);
          const name = instanceNameOf(clientId, `i${i}`);
          const made = await kube.clientPods.create(
            clientPodManifest({ name, clientId, instanceId: `i${i}`, podTemplate: "gptme-client" }),
          );
          if (!made.created) throw new Error(`${name} exists`);
          await kube.clientPods.patchStatus(name, { lastActivity: idleSince });
          owners.push(made.object);
        }),
      ),
    );
    const setupSeconds = (performance.now() - setupStarted) / 1000;

    const runs: RolloutRun[] = [];
    for (const max of maxes) {
      say(`rollout: ${instances} Pods of the old revision`);
      await Promise.all(owners.map((owner) => limit(() => oldPod(owner))));
      const calls: Record<string, number> = {};
      const counted = new Kube(credentialsOf(adminKubeConfig()), namespace, {
        call: (verb, resource) => {
          const key = `${verb} ${resource}`;
          calls[key] = (calls[key] ?? 0) + 1;
        },
      });
      let passes = 0;
      let replaced = 0;
      let seconds = 0;
      const passMs: number[] = [];
      try {
        for (;;) {
          const started = performance.now();
          const summary = await reap(counted, {
            defaults: { idleTimeoutMs: 24 * 3600_000, maxLifetimeMs: 48 * 3600_000 },
            workspaceRetentionMs: 30 * 86_400_000,
            dryRun: false,
            concurrency: CONCURRENCY,
            now: () => new Date(),
            log: createLogger({ level: "silent", name: "fleet-reaper" }, process.stdout),
            probe: { timeoutMs: 2_000 },
            rollout: {
              idleMs: 10 * 60_000,
              max,
              revision: { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi", workspaces: true },
            },
          });
          const took = performance.now() - started;
          seconds += took / 1000;
          passes++;
          if (summary.outdated > 0) passMs.push(took);
          replaced += summary.outdated;
          if (summary.failed > 0) throw new Error(`a pass failed: ${JSON.stringify(summary)}`);
          if (summary.outdated === 0) break;
        }
      } finally {
        counted.close();
      }
      // The last pass found nothing left to replace: it is the one that says "all current".
      say(
        `rollout: --max-rollout ${max}: ${passes} passes, ${seconds.toFixed(1)} s, ${replaced} replaced`,
      );
      runs.push({ maxRollout: max, passes, seconds, calls, replaced, pass: stats(passMs) });
    }
    return { instances, runs, setupSeconds };
  } finally {
    kube.close();
    listener.close();
    say(`rollout: deleting ${namespace}`);
    await deleteNamespace(namespace);
  }
}
