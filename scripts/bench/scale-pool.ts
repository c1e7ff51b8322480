import { Writable } from "node:stream";
import { CoreV1Api } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { tendPool } from "../../reaper/pool-pass.js";
import { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { loadHandlerConfig } from "../../shared/config/load.js";
import { defaultPlans } from "../../shared/config/plans.js";
import { isServing } from "../../shared/instance/serving.js";
import { createLogger } from "../../shared/log.js";
import { POOL_SELECTOR } from "../../shared/pool/member.js";
import { parseTokenKeys } from "../../shared/tokens/instance-token.js";
import { adminKube, adminKubeConfig, type BenchHandler, httpGet, startHandler } from "./lib.js";
import type { PathCost } from "./scale-measure.js";
import { stats } from "./stats.js";

// The scale benchmark's pool claim: at each size, a handler with the warm pool on, and new
// clients claiming one member at a time.

const POOL_SIZE = 3;
const quietLogger = () =>
  createLogger(
    { level: "silent", name: "bench" },
    new Writable({ write: (_chunk, _encoding, done) => done() }),
  );

/**
 * New clients claiming a pool member one at a time, against a handler with the warm pool on
 * (POOL_SIZE members started by the reaper's pool step and seen answering before each claim).
 */
export async function poolClaims(
  namespace: string,
  env: Record<string, string>,
  config: ReturnType<typeof loadHandlerConfig>,
  keyText: string,
  size: number,
  count: number,
  measure: (
    handler: BenchHandler,
    total: number,
    concurrency: number,
    request: (i: number) => Promise<boolean>,
  ) => Promise<PathCost>,
): Promise<PathCost> {
  const kube = adminKube(namespace);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const handler = await startHandler(namespace, { ...env, POOL_SIZE: String(POOL_SIZE) });
  const keyring = new TokenKeyring(
    { kind: "configured", keys: { current: () => parseTokenKeys(keyText) } },
    kube,
    10_000,
  );
  const fill = async () => {
    for (let i = 0; i < 120; i++) {
      await tendPool(kube, {
        plans: defaultPlans({
          template: config.plans.current().default.template,
          maxInstancesPerClient: 50,
          workspaceSize: "1Gi",
          poolSize: POOL_SIZE,
        }),
        member: { resources: config, workspaces: config.workspaces },
        keyring,
        concurrency: 4,
        dryRun: false,
        now: () => new Date(),
        log: quietLogger(),
      }).catch(() => undefined);
      const members = (await core.listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
        .items;
      if (members.filter(isServing).length >= POOL_SIZE) return;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    throw new Error("the pool did not fill");
  };
  const claimKey = (j: number) => ({ "x-api-key": `bench-scale-claim-${size}-${j}` });
  const costs: PathCost[] = [];
  try {
    for (let j = 0; j < count; j++) {
      await fill();
      costs.push(
        await measure(handler, 1, 1, async () => {
          const answer = await httpGet(`${handler.url}/instances/claimed?wait=30`, claimKey(j));
          return answer.status === 200 && JSON.parse(answer.body).created === true;
        }),
      );
    }
    const limit = pLimit(4);
    await Promise.all(
      Array.from({ length: count }, (_, j) =>
        limit(() =>
          fetch(`${handler.url}/instances/claimed?purge=true`, {
            method: "DELETE",
            headers: claimKey(j),
          }),
        ),
      ),
    );
  } finally {
    await handler.stop();
    kube.close();
  }
  const latencies = costs.flatMap((c) => [c.stats.p50]);
  const avg = (f: (c: PathCost) => number) => costs.reduce((a, c) => a + f(c), 0) / costs.length;
  return {
    stats: stats(latencies),
    calls: avg((c) => c.calls),
    apiRequests: avg((c) => c.apiRequests),
    etcdWrites: avg((c) => c.etcdWrites),
    unexpected: costs.reduce((a, c) => a + c.unexpected, 0),
  };
}
