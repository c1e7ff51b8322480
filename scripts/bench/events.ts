import * as http from "node:http";
import { type Stats, stats } from "./stats.js";

// Event-stream latency along several paths (direct, through Traefik, through the gateway),
// measured in turns in the same run: how long a client waits for a stream's first event, and
// how long each later event takes from the upstream's write to the client's read.

/** Reads an event stream of {"seq","t"} frames; latency is arrival time minus the writer's t. */
export function readEvents(
  url: string,
  headers: Record<string, string>,
  agent: http.Agent,
  onEvent: (seq: number, latencyMs: number) => void,
): Promise<http.ClientRequest> {
  return new Promise((resolveRequest, reject) => {
    const request = http.get(url, { headers, agent }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`${url} answered ${response.statusCode}`));
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        const now = performance.timeOrigin + performance.now();
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          const frame = JSON.parse(buffer.slice(6, end)) as { seq: number; t: number };
          onEvent(frame.seq, now - frame.t);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      });
      response.on("error", () => undefined);
      resolveRequest(request);
    });
    request.on("error", (e) => (request.destroyed ? undefined : reject(e)));
  });
}

export interface StreamPath {
  url: string;
  headers: Record<string, string>;
}

export interface EventLatency {
  /** From sending the stream's request (a new connection) to reading its first event. */
  firstEvent: Stats;
  /** From the upstream writing an event to the client reading it, on an open stream. */
  perEvent: Stats;
  /** Per event, this path's latency less direct's for the same event (read at the same time). */
  addedPerEvent: Stats;
}

export interface EventSettings {
  rounds: number;
  /** Streams opened one after another per path and round (each timed to its first event). */
  opens: number;
  /** Events read on the shared stream, along every path at once (after `skip` of warm-up). */
  events: number;
  skip: number;
}

/** Opens a stream and times it to its first event (the upstream writes one at once). */
async function firstEventOf(path: StreamPath, agent: http.Agent): Promise<number> {
  const started = performance.now();
  let done: (ms: number) => void = () => undefined;
  const first = new Promise<number>((r) => (done = r));
  const request = await readEvents(path.url, path.headers, agent, () =>
    done(performance.now() - started),
  );
  const ms = await first;
  request.destroy();
  return ms;
}

/**
 * The shared stream read along every path at once: each event's latency per path. Each event
 * reaches all paths at the same moment, so what the machine's other load does to one event
 * (a stalled upstream, a stalled reader) it does to all: a path's latency less direct's for
 * the same event is what that path adds.
 */
async function sharedEvents<P extends string>(
  paths: Record<P, StreamPath>,
  agent: http.Agent,
  skip: number,
  count: number,
): Promise<Record<P, Map<number, number>>> {
  const order = Object.keys(paths) as P[];
  const seen = Object.fromEntries(order.map((p) => [p, new Map<number, number>()])) as Record<
    P,
    Map<number, number>
  >;
  let firstSeq: number | undefined;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const requests = await Promise.all(
    order.map((p) =>
      readEvents(`${paths[p].url}/shared`, paths[p].headers, agent, (seq, latency) => {
        // Counted from the first event every path has read, after a warm-up.
        seen[p].set(seq, latency);
        if (firstSeq === undefined && order.every((q) => seen[q].has(seq))) firstSeq = seq + skip;
        const last = firstSeq === undefined ? undefined : firstSeq + count;
        if (last !== undefined && order.every((q) => seen[q].has(last))) done();
      }),
    ),
  );
  await finished;
  for (const request of requests) request.destroy();
  const from = firstSeq ?? 0;
  for (const p of order) {
    for (const seq of seen[p].keys()) if (seq < from || seq >= from + count) seen[p].delete(seq);
  }
  return seen;
}

/**
 * Each path's first-event latency (`rounds` rounds with the order rotated, so the machine's
 * other load falls on every path alike), then every path's per-event latency on the shared
 * stream at once, and what it adds to direct's (`direct` must be one of the paths).
 */
export async function eventLatency<P extends string>(
  paths: Record<P | "direct", StreamPath>,
  settings: EventSettings,
): Promise<Record<P | "direct", EventLatency>> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: 16 });
  const order = Object.keys(paths) as (P | "direct")[];
  const first = Object.fromEntries(order.map((p) => [p, [] as number[]])) as Record<
    P | "direct",
    number[]
  >;
  for (const p of order) await firstEventOf(paths[p], agent);
  for (let round = 0; round < settings.rounds; round++) {
    const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)];
    for (const p of rotated) {
      for (let i = 0; i < settings.opens; i++) first[p].push(await firstEventOf(paths[p], agent));
    }
  }
  const each = await sharedEvents(paths, agent, settings.skip, settings.events);
  agent.destroy();
  const direct = each.direct;
  return Object.fromEntries(
    order.map((p) => {
      const added = [...each[p]].flatMap(([seq, ms]) => {
        const base = direct.get(seq);
        return base === undefined ? [] : [ms - base];
      });
      return [
        p,
        {
          firstEvent: stats(first[p]),
          perEvent: stats([...each[p].values()]),
          addedPerEvent: stats(added),
        },
      ];
    }),
  ) as Record<P | "direct", EventLatency>;
}
