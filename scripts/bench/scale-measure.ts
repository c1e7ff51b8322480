import { apiCalls, type BenchHandler, say } from "./lib.js";
import type { ControlPlane } from "./scale-metrics.js";
import { closedLoop, type Stats, stats } from "./stats.js";

// How the scale benchmark measures a request path at one size: latencies, with the handler's
// API calls and the control plane's requests and etcd writes made meanwhile.

/** A request path measured at one size: latency, and what it cost the control plane. */
export interface PathCost {
  stats: Stats;
  /** Kubernetes API calls the handler made, per request. */
  calls: number;
  /** Requests the API server answered, per request (everyone's: the background included). */
  apiRequests: number;
  /** Writes to etcd, per request (everyone's). */
  etcdWrites: number;
  /** Answers other than the expected status. */
  unexpected: number;
}

/** A request: true when it was answered as expected. */
type Request = (i: number) => Promise<boolean>;

/** Runs of one path, summed. */
interface Sampled {
  latencies: number[];
  calls: number;
  apiRequests: number;
  etcdWrites: number;
  unexpected: number;
}

/** The counters a run is measured between. */
interface Counters {
  calls: number;
  plane: ControlPlane;
}

/** Instances per chunk of the gateway's first and next requests (see measureFirstAndNext). */
const TTL_CHUNK = 10;

export function pathMeter(cluster: { read(): Promise<ControlPlane> }) {
  const counters = async (handler: BenchHandler): Promise<Counters> => ({
    calls: await apiCalls(handler.url),
    plane: await cluster.read(),
  });
  const sampled = (): Sampled => ({
    latencies: [],
    calls: 0,
    apiRequests: 0,
    etcdWrites: 0,
    unexpected: 0,
  });
  /** One closed loop, added to `into`, measured from `before`; the counters after it. */
  const run = async (
    into: Sampled,
    handler: BenchHandler,
    before: Counters,
    total: number,
    concurrency: number,
    request: Request,
  ): Promise<Counters> => {
    const loop = await closedLoop(total, concurrency, async (i) => {
      if (!(await request(i))) into.unexpected++;
    });
    const after = await counters(handler);
    into.latencies.push(...loop.latencies);
    into.calls += after.calls - before.calls;
    into.apiRequests += after.plane.apiRequests - before.plane.apiRequests;
    into.etcdWrites += after.plane.etcdWrites - before.plane.etcdWrites;
    return after;
  };
  const costOf = (runs: Sampled): PathCost => {
    const total = runs.latencies.length;
    const cost = {
      stats: stats(runs.latencies),
      calls: runs.calls / total,
      apiRequests: runs.apiRequests / total,
      etcdWrites: runs.etcdWrites / total,
      unexpected: runs.unexpected,
    };
    // Logged at once: a run that dies later in the size (at 100,000 the API server was
    // killed for memory during the pool claims) keeps what it measured before.
    say(`scale:   measured ${JSON.stringify(cost)}`);
    return cost;
  };

  return {
    /** `total` requests, `concurrency` at a time. */
    async measure(
      handler: BenchHandler,
      total: number,
      concurrency: number,
      request: Request,
    ): Promise<PathCost> {
      const runs = sampled();
      await run(runs, handler, await counters(handler), total, concurrency, request);
      return costOf(runs);
    },

    /**
     * A request to each of `count` instances the handler has not seen, then another to each
     * while its lookup is kept (TARGET_TTL_MS, 1 s), one at a time: in chunks small enough
     * that a chunk's second pass comes within the TTL at every size (a whole second pass
     * came past it at 10,000, and measured the read by name again, not the cache).
     */
    async measureFirstAndNext(
      handler: BenchHandler,
      count: number,
      request: Request,
    ): Promise<{ first: PathCost; next: PathCost }> {
      const [first, next] = [sampled(), sampled()];
      let at = await counters(handler);
      for (let start = 0; start < count; start += TTL_CHUNK) {
        const chunk = Math.min(TTL_CHUNK, count - start);
        const inChunk = (i: number) => request(start + i);
        at = await run(first, handler, at, chunk, 1, inChunk);
        at = await run(next, handler, at, chunk, 1, inChunk);
      }
      return { first: costOf(first), next: costOf(next) };
    },
  };
}
