import {
  answerHealth,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  rssMb,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop } from "./stats.js";

export interface MemoryResult {
  idleMb: number;
  afterMb: number;
  requests: number;
  seconds: number;
}

/** Handler RSS when idle (after warm-up) and after `requests` warm requests. */
export async function memory(requests: number): Promise<MemoryResult> {
  const namespace = await createNamespace("bench-memory");
  const health = answerHealth(namespace);
  await installTemplate(namespace);
  const handler = await startHandler(namespace);
  const headers = { "x-api-key": "bench-memory-key-01" };
  try {
    await httpGet(`${handler.url}/instances/m0?wait=30`, headers);
    await closedLoop(
      2_000,
      16,
      async () => void (await httpGet(`${handler.url}/instances/m0`, headers)),
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const idleMb = rssMb(handler.pid);
    say(`memory: ${requests} requests (idle RSS ${idleMb.toFixed(0)} MB)`);
    const run = await closedLoop(requests, 32, async () => {
      await httpGet(`${handler.url}/instances/m0`, headers);
    });
    await new Promise((r) => setTimeout(r, 2_000));
    return { idleMb, afterMb: rssMb(handler.pid), requests, seconds: run.seconds };
  } finally {
    await handler.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
