// What the benchmarks measure with and how they write it: latency statistics, a closed-loop
// load of N calls with C in flight, and the report's number formats.

export interface Stats {
  count: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    mean: sum / sorted.length,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** Runs `worker` `total` times with `concurrency` in flight; returns each call's latency in ms. */
export async function closedLoop(
  total: number,
  concurrency: number,
  worker: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t = performance.now();
        await worker(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/** A section of the benchmarks' report, and its rows in the headline table. */
export interface Report {
  section: string;
  headline: string[];
}

export const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} ms`;
export const signed = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(0)}`;
/** How much larger `a` is than `b`, in percent, signed. */
export const pct = (a: number, b: number) => `${signed((a / b - 1) * 100)}%`;
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
