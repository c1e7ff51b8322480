import { clientIdOf, instanceNameOf } from "../../shared/names.js";
import {
  adminKube,
  apiCalls,
  closedLoop,
  createNamespace,
  deleteNamespace,
  installTemplate,
  type Stats,
  say,
  startHandler,
  stats,
} from "./lib.js";

export interface WarmLevel {
  concurrency: number;
  handler: Stats & { rps: number };
  baseline: Stats & { rps: number };
  callsPerRequest: number;
}

const INSTANCES = 16;
const KEY = "bench-warm-key-0001";

/**
 * GET /instances/:id for ready instances against one handler, against the bare API-server
 * GET of the same ClientPods with the same client library, at each concurrency.
 */
export async function warmPath(levels: number[], requests: number): Promise<WarmLevel[]> {
  const namespace = await createNamespace("bench-warm");
  await installTemplate(namespace);
  const handler = await startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: String(INSTANCES) });
  const kube = adminKube(namespace);
  const headers = { "x-api-key": KEY };
  const names = Array.from({ length: INSTANCES }, (_, i) =>
    instanceNameOf(clientIdOf(KEY), `w${i}`),
  );
  try {
    for (let i = 0; i < INSTANCES; i++) {
      const res = await fetch(`${handler.url}/instances/w${i}?wait=30`, { headers });
      if (res.status !== 200) throw new Error(`warm-up: ${res.status} ${await res.text()}`);
    }
    const results: WarmLevel[] = [];
    for (const concurrency of levels) {
      say(`warm: concurrency ${concurrency}, ${requests} requests each`);
      // Warm both paths' connections first, then measure: baseline, handler.
      await closedLoop(
        200,
        concurrency,
        async (i) => void (await kube.getClientPod(names[i % INSTANCES] ?? "")),
      );
      await closedLoop(200, concurrency, async (i) => {
        await (
          await fetch(`${handler.url}/instances/w${i % INSTANCES}`, { headers })
        ).arrayBuffer();
      });
      const baseline = await closedLoop(requests, concurrency, async (i) => {
        await kube.getClientPod(names[i % INSTANCES] ?? "");
      });
      const callsBefore = await apiCalls(handler.url);
      let failures = 0;
      const measured = await closedLoop(requests, concurrency, async (i) => {
        const res = await fetch(`${handler.url}/instances/w${i % INSTANCES}`, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) failures++;
      });
      if (failures > 0) throw new Error(`warm: ${failures} requests did not answer 200`);
      const callsPerRequest = ((await apiCalls(handler.url)) - callsBefore) / requests;
      results.push({
        concurrency,
        baseline: { ...stats(baseline.latencies), rps: requests / baseline.seconds },
        handler: { ...stats(measured.latencies), rps: requests / measured.seconds },
        callsPerRequest,
      });
    }
    return results;
  } finally {
    kube.close();
    await handler.stop();
    await deleteNamespace(namespace);
  }
}
