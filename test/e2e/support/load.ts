import { inject } from "vitest";

export interface Outcome {
  path: string;
  status: number; // 0: no HTTP answer at all (connection refused or cut)
  name?: string;
  /** Its Pod's name (a new instance from the warm pool keeps the member's). */
  pod?: string;
  at: number;
}

/**
 * Bounded load on the public route through Traefik: `workers` loops, each sending the next
 * of `paths` in turn until `stop()` resolves or `maxRequests` were sent, one request at a
 * time. Every answer is recorded.
 */
export async function runLoad(
  paths: string[],
  options: { workers: number; maxRequests: number; until: Promise<unknown> },
): Promise<Outcome[]> {
  const base = inject("traefikUrl");
  const outcomes: Outcome[] = [];
  let stopped = false;
  let sent = 0;
  void options.until.finally(() => {
    stopped = true;
  });
  const worker = async (offset: number) => {
    for (let i = offset; !stopped && sent < options.maxRequests; i++) {
      sent++;
      const path = paths[i % paths.length] as string;
      try {
        const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(60_000) });
        const body = (await res.json().catch(() => ({}))) as {
          name?: string;
          endpoint?: { path: string };
        };
        const pod = body.endpoint?.path.split("/").pop();
        outcomes.push({ path, status: res.status, name: body.name, pod, at: Date.now() });
      } catch {
        outcomes.push({ path, status: 0, at: Date.now() });
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  return outcomes;
}

export const countBy = (outcomes: Outcome[]): Record<string, number> =>
  outcomes.reduce<Record<string, number>>((acc, o) => {
    acc[o.status] = (acc[o.status] ?? 0) + 1;
    return acc;
  }, {});
