import type { EventLatency } from "./events.js";
import { EVENT_SETTINGS, type GatewayResult } from "./gateway.js";
import { ms, type Report, ratio } from "./stats.js";

// The instance gateway's part of the report: its section, its headline rows, and each of the
// issue's aims judged from this one run's figures.

type Figures = { rps: number; p50: number; p99: number; cpuPer1000Ms?: number };

const t = (x: Figures) => `${x.rps.toFixed(0)} / ${ms(x.p50)} / ${ms(x.p99)}`;
const cpu = (x: Figures) => `${(x.cpuPer1000Ms ?? Number.NaN).toFixed(0)} ms`;
const cpuOf = (a: Figures, b: Figures) =>
  (a.cpuPer1000Ms ?? Number.NaN) / (b.cpuPer1000Ms ?? Number.NaN);
const added = (a: number, b: number) => ms(a - b);
const signed = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(0)}`;
const verdict = (met: boolean) => (met ? "met" : "**missed**");

/** An event stream's latencies: first event, per event, and per event less direct's (p50 / p99). */
const eventRow = (what: string, e: EventLatency, direct: EventLatency) => {
  const isDirect = what === "direct";
  const firstAdded = `${added(e.firstEvent.p50, direct.firstEvent.p50)} / ${added(e.firstEvent.p99, direct.firstEvent.p99)}`;
  const eachAdded = `${ms(e.addedPerEvent.p50)} / ${ms(e.addedPerEvent.p99)}`;
  return `| ${what} | ${ms(e.firstEvent.p50)} / ${ms(e.firstEvent.p99)} | ${isDirect ? "–" : firstAdded} | ${ms(e.perEvent.p50)} / ${ms(e.perEvent.p99)} | ${isDirect ? "–" : eachAdded} |`;
};

/** The aims of the gateway's issue, each with this run's figure and whether it is met. */
function aims(r: GatewayResult): string[] {
  const rows: string[] = [];
  for (const l of r.levels) {
    const x = cpuOf(l.gateway, l.traefik);
    rows.push(
      `| CPU per proxied request ≤ 1.5× Traefik's, c=${l.concurrency} | ${cpu(l.gateway)} vs ${cpu(l.traefik)} per 1,000: ${x.toFixed(2)}× | ${verdict(x <= 1.5)} |`,
    );
  }
  for (const l of r.levels.filter((l) => l.concurrency >= 16)) {
    const x = l.gateway.rps / l.direct.rps;
    rows.push(
      `| throughput ≥ 0.5× direct, c=${l.concurrency} | ${l.gateway.rps.toFixed(0)} vs ${l.direct.rps.toFixed(0)} req/s: ${x.toFixed(2)}× (Traefik ${ratio(l.traefik.rps, l.direct.rps)}) | ${verdict(x >= 0.5)} |`,
    );
  }
  const one = r.levels.find((l) => l.concurrency === 1);
  if (one) {
    const gw = one.gateway.p50 - one.direct.p50;
    const tr = one.traefik.p50 - one.direct.p50;
    rows.push(
      `| added p50 at c=1 ≤ 1.2× Traefik's | ${ms(gw)} vs ${ms(tr)}: ${(gw / tr).toFixed(2)}× | ${verdict(gw / tr <= 1.2)} |`,
    );
  }
  const e = r.events;
  const perEvent = e.gateway.addedPerEvent.p99;
  const first = e.gateway.firstEvent.p99 - e.direct.firstEvent.p99;
  rows.push(
    `| event stream added p99 < 1 ms (per event, against the same event direct) | ${ms(perEvent)} (Traefik ${ms(e.traefik.addedPerEvent.p99)}); p99 ${ms(e.gateway.perEvent.p99)} against direct's ${ms(e.direct.perEvent.p99)} | ${verdict(perEvent < 1)} |`,
    `| (first event of a new stream, p99 less direct's; no aim) | ${ms(first)} (Traefik ${added(e.traefik.firstEvent.p99, e.direct.firstEvent.p99)}) | – |`,
  );
  return rows;
}

/** The gateway's section of BENCHMARKS.md, and its rows of the headline table. */
export function gatewayReport(r: GatewayResult): Report {
  const rows = r.levels.map(
    (l) =>
      `| ${l.concurrency} | ${t(l.direct)} | ${t(l.traefik)} | ${t(l.gateway)} | ${t(l.bareHttpxy)} |`,
  );
  const cpuRows = r.levels.map(
    (l) =>
      `| ${l.concurrency} | ${cpu(l.gateway)} | ${cpu(l.traefik)} | ${ratio(l.gateway.cpuPer1000Ms ?? Number.NaN, l.traefik.cpuPer1000Ms ?? Number.NaN)} | ${ratio(l.gateway.rps, l.direct.rps)} | ${ratio(l.traefik.rps, l.direct.rps)} | ${added(l.gateway.p50, l.direct.p50)} / ${added(l.gateway.p99, l.direct.p99)} | ${added(l.traefik.p50, l.direct.p50)} / ${added(l.traefik.p99, l.direct.p99)} | ${ratio(l.gateway.p50 - l.direct.p50, l.traefik.p50 - l.direct.p50)} | ${cpu(l.bareHttpxy)} |`,
  );
  const gptmeRows = r.levels.map(
    (l) =>
      `| ${l.concurrency} | ${t(l.gptmeDirect)} | ${t(l.gptmeTraefik)} | ${t(l.gptmeGateway)} | ${cpu(l.gptmeGateway)} | ${cpu(l.gptmeTraefik)} | ${cpuOf(l.gptmeGateway, l.gptmeTraefik).toFixed(2)}× | ${ratio(l.gptmeGateway.rps, l.gptmeDirect.rps)} | ${ratio(l.gptmeTraefik.rps, l.gptmeDirect.rps)} |`,
  );
  const n = r.levels[0]?.gateway.count ?? 0;
  const ev = EVENT_SETTINGS;
  const section = `## Instance gateway

One handler process proxying \`/api/v1/instances/<name>/...\` (token check, instance lookup,
activity, request log and metrics at \`LOG_LEVEL=info\`, the proxy), against the same request
sent straight to the upstream and through a real Traefik v3.6 (file provider, one entry point
per upstream, access log off), in the same run, at each concurrency (after ${r.warmUp.toLocaleString("en")} requests of
warm-up per path, as a replica that has been serving; ${r.rounds} rounds of each path, the order
rotated; ${n.toLocaleString("en")} requests per path and level for the minimal upstream, a fifth of that for
gptme-server). Upstreams: a minimal node:http server in its own process at an instance's
loopback pod IP (\`GET /ping\`, the proxy's own ceiling), and the real gptme-server 0.35.1
(\`GET /api/v2/conversations?limit=1\`, authenticated; Flask answers \`Connection: close\`, so
every request is a new connection, direct or not). Also httpxy bare (no token, no lookup) in
its own process. CPU per 1,000 requests is each proxy process's own utime + stime from
\`/proc\` over its runs: robust to the other load on the machine, unlike latencies and
throughput ratios, which are comparable only within one run.

The issue's aims, judged from this run (minimal upstream):

| aim | this run | |
|---|---|---|
${aims(r).join("\n")}

req/s / p50 / p99 per path (minimal upstream):

| concurrency | direct | Traefik | gateway | bare httpxy |
|---:|---|---|---|---|
${rows.join("\n")}

CPU per 1,000 proxied requests, throughput against direct, added latency:

| concurrency | gateway CPU / 1,000 | Traefik CPU / 1,000 | gateway / Traefik (aim ≤ 1.5×) | gateway throughput vs direct (aim ≥ 0.5× at 16, 64) | Traefik | gateway adds p50 / p99 | Traefik adds p50 / p99 | gateway's added p50 / Traefik's (aim ≤ 1.2× at c=1) | bare httpxy CPU / 1,000 |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${cpuRows.join("\n")}

The real gptme-server upstream (req/s / p50 / p99; CPU per 1,000 of the proxy process):

| concurrency | gptme direct | via Traefik | via gateway | gateway CPU / 1,000 | Traefik CPU / 1,000 | gateway / Traefik | gateway throughput vs direct | Traefik |
|---:|---|---|---|---:|---:|---:|---:|---:|
${gptmeRows.join("\n")}

API calls per proxied request: ${r.callsPerRequest.toFixed(4)} (the instance lookup is cached for
1 s per replica; activity is written at most once per instance per \`ACTIVITY_INTERVAL\`).

**Event stream.** First event: from sending a stream's request on a new connection to reading
its first event (the upstream writes one at once), direct, through Traefik and through the
gateway in turns (${ev.rounds} rounds, the order rotated; ${(ev.rounds * ev.opens).toLocaleString("en")} streams per path). Per event: one
stream of the upstream read along the three paths at once (each event written to the three
at the same moment, one every 20 ms, ${ev.events.toLocaleString("en")} events), from the upstream's write to the client's
read; "added" is, event by event, a path's latency less direct's for the same event, so the
machine's other load (a stalled upstream or reader) falls on both sides of the difference.
p50 / p99:

| path | first event | added (p50 less p50, p99 less p99) | per event | added per event |
|---|---:|---:|---:|---:|
${eventRow("direct", r.events.direct, r.events.direct)}
${eventRow("Traefik", r.events.traefik, r.events.direct)}
${eventRow("gateway", r.events.gateway, r.events.direct)}

**${r.streams.count.toLocaleString("en")} concurrent open streams** through one handler for ${r.streams.seconds} s
(one event per second each): handler RSS ${r.streams.rssBeforeMb.toFixed(0)} MB before, ${r.streams.rssOpenMb.toFixed(0)} MB at most
while open (${signed(r.streams.rssOpenMb - r.streams.rssBeforeMb)} MB); ${r.streams.received.toLocaleString("en")} events received, ${r.streams.lost} lost.
`;
  const headline: string[] = [];
  for (const l of r.levels) {
    headline.push(
      `| gateway, c=${l.concurrency}, minimal upstream | ${cpu(l.gateway)} CPU per 1,000 requests (Traefik ${cpu(l.traefik)}: ${cpuOf(l.gateway, l.traefik).toFixed(2)}×, aim ≤ 1.5×); ${l.gateway.rps.toFixed(0)} req/s, ${ratio(l.gateway.rps, l.direct.rps)} of direct | Traefik ${ratio(l.traefik.rps, l.direct.rps)} of direct; gateway adds p50 ${added(l.gateway.p50, l.direct.p50)}, Traefik ${added(l.traefik.p50, l.direct.p50)} (${ratio(l.gateway.p50 - l.direct.p50, l.traefik.p50 - l.direct.p50)}) |`,
    );
  }
  const e = r.events;
  headline.push(
    `| gateway, event stream | adds p99 ${ms(e.gateway.addedPerEvent.p99)} per event; first event p99 ${added(e.gateway.firstEvent.p99, e.direct.firstEvent.p99)} over direct's | aim < 1 ms per event; Traefik adds ${ms(e.traefik.addedPerEvent.p99)} / ${added(e.traefik.firstEvent.p99, e.direct.firstEvent.p99)} |`,
    `| gateway, ${r.streams.count} open streams | ${signed(r.streams.rssOpenMb - r.streams.rssBeforeMb)} MB RSS, ${r.streams.lost} events lost | aim < 100 MB, none lost |`,
    `| gateway, API calls per proxied request | ${r.callsPerRequest.toFixed(4)} | aim ≤ 1 |`,
  );
  return { section, headline };
}
