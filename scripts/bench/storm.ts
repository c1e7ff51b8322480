import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import {
  adminKubeConfig,
  answerHealth,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

export interface StormResult {
  requests: number;
  pairs: number;
  clientPods: number;
  pods: number;
  statuses: Record<string, number>;
  latency: Stats;
  seconds: number;
}

/** `requests` requests for `pairs` distinct (key, instance) pairs through 2 handler processes at once. */
export async function storm(
  requests: number,
  pairs: number,
  concurrency: number,
): Promise<StormResult> {
  const namespace = await createNamespace("bench-storm");
  const health = answerHealth(namespace);
  await installTemplate(namespace);
  const env = { MAX_INSTANCES_PER_CLIENT: "10", MAX_INSTANCES: "1000" };
  const handlers = [await startHandler(namespace, env), await startHandler(namespace, env)];
  try {
    say(
      `storm: ${requests} requests for ${pairs} pairs through 2 handlers, ${concurrency} in flight`,
    );
    const statuses: Record<string, number> = {};
    const run = await closedLoop(requests, concurrency, async (i) => {
      const pair = (i * 7919) % pairs; // spread each pair's requests over the run
      const handler = handlers[i % 2];
      const res = await httpGet(`${handler?.url}/instances/s${pair % 10}?wait=30`, {
        "x-api-key": `bench-storm-key-${Math.floor(pair / 10)}`,
      });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    });
    const kc = adminKubeConfig();
    const clientPods = (
      (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
        group: "gptme.ai",
        version: "v1",
        namespace,
        plural: "clientpods",
      })) as { items: unknown[] }
    ).items.length;
    const pods = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items.length;
    return {
      requests,
      pairs,
      clientPods,
      pods,
      statuses,
      latency: stats(run.latencies),
      seconds: run.seconds,
    };
  } finally {
    for (const h of handlers) await h.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
