import { request } from "node:http";
import type { Fetched, ProbeResult } from "./verdict.js";

/** Where an instance's gptme-server listens: its Pod's IP, as Kubernetes reports it, and `http` port. */
export interface ProbeTarget {
  host: string;
  port: number;
}

/** More than any health or metrics answer; a longer one is not a gptme-server's. */
const MAX_BODY_BYTES = 256 * 1024;

/**
 * Asks an instance's gptme-server, without credentials, whether it is working: both paths at
 * once, both within `timeoutMs` in all (connect, answer and body), so a server that hangs
 * costs one bound and never the run.
 */
export async function probeInstance(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const signal = AbortSignal.timeout(timeoutMs);
  const [health, metrics] = await Promise.all([
    get(target, "/api/v2/server/health", signal, timeoutMs),
    get(target, "/api/v0/metrics", signal, timeoutMs),
  ]);
  return { health, metrics };
}

function get(
  { host, port }: ProbeTarget,
  path: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Fetched> {
  return new Promise((resolve) => {
    // No agent: one connection per path, closed after the answer. A pass probes each
    // instance once, so pooled sockets would only pile up (one per instance) until exit.
    const req = request({ host, port, path, agent: false, signal, headers: { accept: "*/*" } });
    // A promise settles once: whichever of these comes first is the answer.
    const fail = (error: NodeJS.ErrnoException) =>
      resolve({
        error: signal.aborted ? `no answer within ${timeoutMs} ms` : (error.code ?? error.message),
      });
    req.on("error", fail);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          resolve({ error: `answer longer than ${MAX_BODY_BYTES} bytes` });
          req.destroy();
        } else chunks.push(chunk);
      });
      res.on("error", fail);
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("close", () => {
        if (!res.complete) fail(new Error("answer cut short"));
      });
    });
    req.end();
  });
}
