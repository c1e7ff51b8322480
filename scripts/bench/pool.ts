import { Writable } from "node:stream";
import { CoreV1Api } from "@kubernetes/client-node";
import { REFILL_AFTER_CLAIM_MS } from "../../handler/pool/warm-pool.js";
import { tendPool } from "../../reaper/pool-pass.js";
import { deleteInstance } from "../../shared/actions/instances.js";
import { TokenKeyring } from "../../shared/actions/token-keyring.js";
import { defaultPlans } from "../../shared/config/plans.js";
import { MANAGED_SELECTOR } from "../../shared/instance/clientpod.js";
import { POOL_NAME_PREFIX, podNameOf } from "../../shared/instance/parts.js";
import { isServing } from "../../shared/instance/serving.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import { LABEL_POOL, POOL_SELECTOR } from "../../shared/pool/member.js";
import { parseTokenKeys } from "../../shared/tokens/instance-token.js";
import { answerPodHealth } from "../lib/pod-health.js";
import {
  adminKube,
  adminKubeConfig,
  apiCalls,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { type Stats, stats } from "./stats.js";

export interface PoolResult {
  rate: number;
  requests: number;
  poolSize: number;
  /** New instances answered from the pool, and their latency. */
  claimed: Stats;
  claimedP90: number;
  /** New instances that missed the pool (cold), and their latency. */
  cold: Stats | undefined;
  failures: number;
  /** API calls per new instance, everything included (the claim, and its background refill). */
  callsPerInstance: number;
  /** One reaper pass after the load: its duration, and how long until every member answers. */
  refill: { passMs: number; fullMs: number; started: number };
}

const TOKEN_KEY = "bench-pool-token-key-0123456789abcdef0123456789";

/**
 * New instances at a sustained `rate` per second across two handler replicas for `seconds`,
 * the pool sized to keep up (POOL_SIZE = every request's worth). KWOK pods run no
 * containers: something answers each pod's health check at its loopback IP
 * (scripts/lib/pod-health.ts), as a started gptme-server would.
 */
export async function poolBench(rate: number, seconds: number): Promise<PoolResult> {
  const requests = rate * seconds;
  const poolSize = requests;
  const namespace = await createNamespace("bench-pool");
  await installTemplate(namespace);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const health = answerPodHealth(core, namespace);
  const env = {
    POOL_SIZE: String(poolSize),
    MAX_INSTANCES: String(poolSize * 4),
    INSTANCE_TOKEN_SECRET: TOKEN_KEY,
  };
  const replicas = [await startHandler(namespace, env), await startHandler(namespace, env)];
  const kube = adminKube(namespace);
  const pass = () =>
    tendPool(kube, {
      plans: defaultPlans({
        template: "gptme-client",
        maxInstancesPerClient: 5,
        workspaceSize: "1Gi",
        poolSize,
      }),
      member: {
        resources: { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi" },
        workspaces: { size: "1Gi", storageClass: undefined },
      },
      keyring: new TokenKeyring(
        { kind: "configured", keys: { current: () => parseTokenKeys(TOKEN_KEY) } },
        kube,
        10_000,
      ),
      concurrency: 10,
      dryRun: false,
      now: () => new Date(),
      log: createLogger(
        { level: "silent", name: "bench" },
        new Writable({ write: (_chunk, _encoding, done) => done() }),
      ),
    });
  /** Passes until every member answers (a pass records the members it sees answering). */
  const fill = async () => {
    const started = performance.now();
    for (let i = 0; i < 120; i++) {
      // A pass the API server throttles (429 under the load's aftermath) is tried again.
      const ran = await pass().catch((error: Error) => say(`pool: pass failed (${error.message})`));
      if (!ran) {
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
        .items;
      if (pods.filter(isServing).length >= poolSize) return performance.now() - started;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error("the pool did not fill");
  };
  try {
    say(`pool: filling ${poolSize} members`);
    await fill();
    const callsBefore = (await Promise.all(replicas.map((r) => apiCalls(r.url)))).reduce(
      (a, b) => a + b,
      0,
    );
    say(`pool: ${requests} new clients at ${rate}/s across two replicas`);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: requests }, async (_, i) => {
        const due = started + (i * 1000) / rate;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        const sent = performance.now();
        const replica = replicas[i % 2] ?? replicas[0];
        const res = await httpGet(`${replica?.url}/instances/default?wait=30`, {
          "x-api-key": `bench-pool-client-${i}-${started.toFixed(0)}`,
        });
        const ms = performance.now() - sent;
        const body = JSON.parse(res.body) as { status?: string; endpoint?: { path: string } };
        return {
          ms,
          ok: res.status === 200 && body.status === "ready",
          pooled: Boolean(body.endpoint?.path.includes(`/${POOL_NAME_PREFIX}`)),
        };
      }),
    );
    const ok = results.filter((r) => r.ok);
    const claimed = ok.filter((r) => r.pooled).map((r) => r.ms);
    const cold = ok.filter((r) => !r.pooled).map((r) => r.ms);
    // Let the replicas' background refills (each started a moment after its claim) land, so
    // that the calls counted include them; then time one pass to a full pool again.
    await new Promise((r) => setTimeout(r, REFILL_AFTER_CLAIM_MS + 5_000));
    const callsAfter = (await Promise.all(replicas.map((r) => apiCalls(r.url)))).reduce(
      (a, b) => a + b,
      0,
    );
    say(
      `pool: claimed ${claimed.length} p50 ${stats(claimed).p50.toFixed(1)} ms p99 ${stats(claimed).p99.toFixed(1)} ms, cold ${cold.length}, failed ${results.length - ok.length}`,
    );
    // The load's instances go first: two KWOK nodes hold 220 Pods, fewer than the load's
    // instances and a full pool of as many members (the refill is timed, not the capacity).
    await removeInstances(kube);
    const passStarted = performance.now();
    const summary = await pass();
    const passMs = performance.now() - passStarted;
    const fullMs = passMs + (await fill());
    return {
      rate,
      requests,
      poolSize,
      claimed: stats(claimed),
      claimedP90:
        [...claimed].sort((a, b) => a - b)[Math.floor(claimed.length * 0.9)] ?? Number.NaN,
      cold: cold.length > 0 ? stats(cold) : undefined,
      failures: results.length - ok.length,
      callsPerInstance: (callsAfter - callsBefore) / requests,
      refill: { passMs, fullMs, started: summary.started },
    };
  } finally {
    kube.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await health.stop();
    await deleteNamespace(namespace);
  }
}

/** Deletes every instance of the namespace (not the pool's members) and waits for their Pods to go. */
async function removeInstances(kube: Kube): Promise<void> {
  const { items } = await kube.clientPods.list({ labelSelector: `!${LABEL_POOL}` });
  await Promise.all(
    items.map((cp) => deleteInstance(kube, cp.metadata.name, undefined, podNameOf(cp))),
  );
  for (let i = 0; i < 120; i++) {
    const pods = await kube.pods.list({ labelSelector: `${MANAGED_SELECTOR},!${LABEL_POOL}` });
    if (pods.items.length === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("the load's instances did not go");
}
