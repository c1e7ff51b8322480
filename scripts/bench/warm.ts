import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import {
  adminKube,
  answerHealth,
  apiCalls,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

export interface WarmLevel {
  concurrency: number;
  handler: Stats & { rps: number };
  /** The baseline: a GET of the instance's ClientPod (a quorum read from etcd). */
  baseline: Stats & { rps: number };
  /** The one call the handler makes: a GET of the instance's Pod from the API server's cache. */
  sameRead: Stats & { rps: number };
  callsPerRequest: number;
}

const INSTANCES = 16;
const KEY = "bench-warm-key-0001";
const ROUNDS = 3;

/** Latencies and time of one path, pooled over its rounds. */
class Run {
  private readonly latencies: number[] = [];
  private seconds = 0;

  add(run: { latencies: number[]; seconds: number }): void {
    this.latencies.push(...run.latencies);
    this.seconds += run.seconds;
  }

  summary(): Stats & { rps: number } {
    return { ...stats(this.latencies), rps: this.latencies.length / this.seconds };
  }
}

/**
 * GET /instances/:id for ready instances against one handler, at each concurrency, against two
 * bare API-server reads with the same client library and concurrency: the GET of the same
 * ClientPods (the baseline) and the very read the handler makes (its Pod, from cache).
 */
export async function warmPath(levels: number[], requests: number): Promise<WarmLevel[]> {
  const namespace = await createNamespace("bench-warm");
  const health = answerHealth(namespace);
  await installTemplate(namespace);
  const handler = await startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: String(INSTANCES) });
  const kube = adminKube(namespace);
  const headers = { "x-api-key": KEY };
  const names = Array.from({ length: INSTANCES }, (_, i) =>
    instanceNameOf(clientIdOf(KEY), `w${i}`),
  );
  try {
    for (let i = 0; i < INSTANCES; i++) {
      const res = await httpGet(`${handler.url}/instances/w${i}?wait=30`, headers);
      if (res.status !== 200) throw new Error(`warm-up: ${res.status} ${res.body}`);
    }
    const clientPodRead = async (i: number) =>
      void (await kube.clientPods.get(names[i % INSTANCES] ?? ""));
    const podRead = async (i: number) =>
      void (await kube.pods.get(names[i % INSTANCES] ?? "", { fromCache: true }));
    let failures = 0;
    const viaHandler = async (i: number) => {
      const res = await httpGet(`${handler.url}/instances/w${i % INSTANCES}`, headers);
      if (res.status !== 200) failures++;
    };
    const paths = { baseline: clientPodRead, sameRead: podRead, handler: viaHandler };
    const results: WarmLevel[] = [];
    for (const concurrency of levels) {
      say(`warm: concurrency ${concurrency}, ${requests} requests per path`);
      // Warm every path's connections and JIT first. Then the paths take turns, in ROUNDS
      // rounds with the order rotated, so drift on this shared machine (etcd compaction, the
      // controllers' periodic work) falls on all three alike.
      for (const path of Object.values(paths)) await closedLoop(300, concurrency, path);
      const runs = { baseline: new Run(), sameRead: new Run(), handler: new Run() };
      const order = Object.keys(paths) as (keyof typeof paths)[];
      const callsBefore = await apiCalls(handler.url);
      for (let round = 0; round < ROUNDS; round++) {
        const first = round % order.length;
        for (const name of [...order.slice(first), ...order.slice(0, first)]) {
          runs[name].add(await closedLoop(requests / ROUNDS, concurrency, paths[name]));
        }
      }
      if (failures > 0) throw new Error(`warm: ${failures} requests did not answer 200`);
      results.push({
        concurrency,
        baseline: runs.baseline.summary(),
        sameRead: runs.sameRead.summary(),
        handler: runs.handler.summary(),
        callsPerRequest: ((await apiCalls(handler.url)) - callsBefore) / requests,
      });
    }
    return results;
  } finally {
    kube.close();
    await handler.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
