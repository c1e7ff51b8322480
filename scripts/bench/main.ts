import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { coldPath } from "./cold.js";
import { gatewayBench } from "./gateway.js";
import { gatewayReport } from "./gateway-report.js";
import { machine, ROOT, say } from "./lib.js";
import { memory } from "./memory.js";
import { plansBench } from "./plans.js";
import { poolBench } from "./pool.js";
import { previewsBench } from "./previews.js";
import { previewsReport } from "./previews-report.js";
import { type ReaperRun, reaperAtScale } from "./reaper.js";
import { reaperProbeAtScale } from "./reaper-probe.js";
import { reaperProbeReport, reaperReport, rolloutReport } from "./reaper-report.js";
import { rolloutAtScale } from "./rollout.js";
import { scaleBench } from "./scale.js";
import { scaleReport } from "./scale-report.js";
import { signinBench } from "./signin.js";
import { signinReport } from "./signin-report.js";
import { ms, pct, type Report, ratio, signed } from "./stats.js";
import { storm } from "./storm.js";
import { warmPath } from "./warm.js";
import { workspacesCold } from "./workspaces.js";

const quick = process.argv.includes("--quick");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);

const sections: string[] = [];
const headline: string[] = [];
const wants = (name: string) => !only || only.split(",").includes(name);
type PathStatsLike = { rps: number; p50: number; p99: number };
type PlansRowSide = PathStatsLike & { calls: number };
/** A section of the report and its rows in the headline table. */
const add = (report: Report) => {
  sections.push(report.section);
  headline.push(...report.headline);
};

if (wants("warm")) {
  const levels = await warmPath([1, 16, 64], quick ? 600 : 3_000);
  const triple = (r: { rps: number; p50: number; p99: number }) =>
    `${r.rps.toFixed(0)} | ${ms(r.p50)} | ${ms(r.p99)}`;
  const figures = levels.map(
    (l) =>
      `| ${l.concurrency} | ${triple(l.handler)} | ${triple(l.baseline)} | ${triple(l.sameRead)} | ${l.callsPerRequest.toFixed(2)} |`,
  );
  const ratios = levels.map(
    (l) =>
      `| ${l.concurrency} | ${ratio(l.handler.rps, l.baseline.rps)} | ${pct(l.handler.p50, l.baseline.p50)} | ${ratio(l.handler.rps, l.sameRead.rps)} | ${pct(l.handler.p50, l.sameRead.p50)} |`,
  );
  sections.push(`## Warm path

\`GET /instances/:id\` for 16 ready instances against one handler process, against two bare
API-server reads with the same client library (client-node over the handler's keep-alive
transport) at the same concurrency, each measured in turn in the same run:

- **baseline**: the GET of the same ClientPods (a quorum read from etcd);
- **same read**: the one call the handler makes, the GET of the instance's Pod from the API
  server's watch cache (\`resourceVersion=0\`); the difference to it is the handler's whole
  cost: its HTTP server, its work and the load generator's client.

${levels[0]?.handler.count} requests per path and level, closed loop; the load generator is a
node:http keep-alive client in the benchmark process.

| concurrency | handler req/s | p50 | p99 | baseline req/s | p50 | p99 | same read req/s | p50 | p99 | API calls / request |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${figures.join("\n")}

| concurrency | throughput vs baseline | p50 overhead vs baseline | throughput vs same read | p50 overhead vs same read |
|---:|---:|---:|---:|---:|
${ratios.join("\n")}
`);
  for (const l of levels) {
    headline.push(
      `| warm, c=${l.concurrency} | ${l.handler.rps.toFixed(0)} req/s, p50 ${ms(l.handler.p50)}, p99 ${ms(l.handler.p99)} | ${ratio(l.handler.rps, l.baseline.rps)} throughput, ${pct(l.handler.p50, l.baseline.p50)} p50 vs GET ClientPod; ${ratio(l.handler.rps, l.sameRead.rps)}, ${pct(l.handler.p50, l.sameRead.p50)} vs the same read |`,
    );
  }
}

if (wants("gateway")) {
  const r = await gatewayBench([1, 16, 64], quick ? 2_000 : 20_000, quick ? 200 : 1_000);
  add(gatewayReport(r));
  if (r.profileDir) say(`gateway: the handler's CPU profile is in ${r.profileDir}`);
}

if (wants("cold")) {
  const results = await coldPath(quick ? 5 : 20, 20);
  const rows = results.map(
    (r) =>
      `| ${r.mode} | ${ms(r.handler.p50)} | ${ms(r.baseline.p50)} | ${ratio(r.handler.p50, r.baseline.p50)} | ${ms(r.handler.p99)} | ${ms(r.baseline.p99)} | ${r.callsPerRequest.toFixed(1)} |`,
  );
  sections.push(`## Cold path

Time from request to the ready answer for new instances (\`?wait=30\`), against the baseline:
creating the same objects directly (the instance's workspace claim, then its Pod), waiting
(watch) until the Pod is Ready, then until its server answers, asked every 100 ms as the fleet
asks (the fleet's "ready": here the stand-in that answers at each pod's IP starts listening up
to 100 ms after the Pod has one, in both).

| mode | handler p50 | baseline p50 | ratio | handler p99 | baseline p99 | API calls / cold request |
|---|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}
`);
  for (const r of results) {
    headline.push(
      `| cold, ${r.mode} | p50 ${ms(r.handler.p50)}, p99 ${ms(r.handler.p99)} | ${ratio(r.handler.p50, r.baseline.p50)} of create-claim-and-Pod-and-wait-until-it-answers |`,
    );
  }
}

if (wants("plans")) {
  const rows = await plansBench(quick ? 600 : 3_000, quick ? 5 : 10);
  const cell = (r: PlansRowSide) =>
    `${ms(r.p50)} | ${ms(r.p99)} | ${r.rps.toFixed(0)} | ${r.calls.toFixed(2)}`;
  sections.push(`## Plans on against off

The same paths through two handler processes in one namespace, both with API keys from a file:
one with PLANS_FILE (two plans; the client's key line names \`pro\`, made from its own
template), one without (the one plan \`default\`). The rounds alternate between them.
API calls per request include the handler's own reads of the reaper's stats at scrape time (at
most one per 15 s).

| path | on p50 | on p99 | on req/s | on API calls | off p50 | off p99 | off req/s | off API calls |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.path} | ${cell(r.on)} | ${cell(r.off)} |`).join("\n")}
`);
  for (const r of rows) {
    headline.push(
      `| plans, ${r.path} | on p50 ${ms(r.on.p50)}, ${r.on.calls.toFixed(2)} API calls | ${pct(r.on.p50, r.off.p50)} p50 vs off (${ms(r.off.p50)}, ${r.off.calls.toFixed(2)} API calls) |`,
    );
  }
}

// POOL_RATES=10,50: new clients per second, one run each (default 50, the issue's rate).
for (const rate of wants("pool") ? (process.env.POOL_RATES ?? "50").split(",").map(Number) : []) {
  const r = await poolBench(rate, quick ? 2 : 3);
  const row = (
    what: string,
    s: { count: number; p50: number; p99: number } | undefined,
    p90?: number,
  ) =>
    s
      ? `| ${what} | ${s.count} | ${ms(s.p50)} | ${p90 === undefined ? "–" : ms(p90)} | ${ms(s.p99)} |`
      : `| ${what} | 0 | – | – | – |`;
  sections.push(`## Warm pool at ${r.rate} new clients per second

New instances at a sustained ${r.rate} per second for ${r.requests / r.rate} s, alternating between two handler
processes, \`POOL_SIZE=${r.poolSize}\` (every request's worth, filled and seen answering before the
load), \`GET /instances/default?wait=30\`, each request a new client. KWOK pods run no
containers: something answers each pod's health check at its loopback IP (as a started
gptme-server would), so "ready" is the fleet's own check, not the kubelet's.

| answered | count | p50 | p90 | p99 |
|---|---:|---:|---:|---:|
${row("from the pool (claim)", r.claimed, r.claimedP90)}
${row("cold (pool missed)", r.cold)}

Failures: ${r.failures}. API calls per new instance, everything the two replicas made
included (the claim's reads and two writes, the first status, the workspace's labels, the
member ClientPod's deletion, and the replacement member started in the background):
${r.callsPerInstance.toFixed(1)}. Refill: once the load's instances were deleted (two KWOK nodes
hold 220 Pods), one reaper pass took ${ms(r.refill.passMs)}
and started ${r.refill.started} members; the pool was back to ${r.poolSize} members, all seen
answering, ${ms(r.refill.fullMs)} after the pass began.
`);
  headline.push(
    `| pool claim at ${r.rate}/s, two replicas | p50 ${ms(r.claimed.p50)}, p99 ${ms(r.claimed.p99)} | ${r.claimed.count} of ${r.requests} from the pool |`,
  );
}

if (wants("workspaces")) {
  const results = await workspacesCold(quick ? 5 : 20);
  const off = results[0];
  const rows = results.map(
    (r) =>
      `| ${r.mode} | ${ms(r.stats.p50)} | ${ms(r.stats.p99)} | ${r === off || !off ? "–" : `${signed(r.stats.p50 - off.stats.p50)} ms`} | ${r.callsPerRequest.toFixed(1)} |`,
  );
  sections.push(`## Workspaces

Cold start of one instance at a time (\`?wait=30\`, the production PodTemplate) with
\`WORKSPACES=off\` and \`on\`, ${results[0]?.stats.count} requests each, off and on alternating; then the
same instances deleted (their workspaces kept) and asked for again. Claims bind through the
local cluster's default StorageClass (Kubernetes' hostPath provisioner, Immediate binding).

| mode | time to ready p50 | p99 | p50 vs off | API calls / cold request |
|---|---:|---:|---:|---:|
${rows.join("\n")}
`);
  for (const r of results.slice(1)) {
    headline.push(
      `| cold, workspaces ${r.mode} | p50 ${ms(r.stats.p50)}, p99 ${ms(r.stats.p99)}, ${r.callsPerRequest.toFixed(1)} API calls | off: p50 ${off ? ms(off.stats.p50) : "?"}, ${off?.callsPerRequest.toFixed(1)} API calls |`,
    );
  }
}

if (wants("storm")) {
  const r = await storm(quick ? 300 : 1_000, quick ? 30 : 100, 64);
  const fivexx = Object.entries(r.statuses)
    .filter(([s]) => s.startsWith("5"))
    .reduce((a, [, n]) => a + n, 0);
  sections.push(`## Storm

${r.requests} requests (\`?wait=30\`, 64 in flight) for ${r.pairs} distinct (key, instance) pairs,
spread over 2 handler processes at once, in ${r.seconds.toFixed(1)} s.

| ClientPods | Pods | answers by status | 5xx | p50 | p99 | max |
|---:|---:|---|---:|---:|---:|---:|
| ${r.clientPods} (expected ${r.pairs}) | ${r.pods} (expected ${r.pairs}) | ${JSON.stringify(r.statuses)} | ${fivexx} | ${ms(r.latency.p50)} | ${ms(r.latency.p99)} | ${ms(r.latency.max)} |
`);
  headline.push(
    `| storm, ${r.requests} req / ${r.pairs} pairs / 2 handlers | ${r.clientPods} ClientPods, ${r.pods} Pods, ${fivexx} 5xx, p99 ${ms(r.latency.p99)} | exactly ${r.pairs} expected |`,
  );
}

if (wants("memory")) {
  const r = await memory(quick ? 10_000 : 100_000);
  sections.push(`## Handler memory

RSS of one handler process (from /proc) idle after warm-up, and after ${r.requests.toLocaleString("en")} warm
requests (32 in flight, ${(r.requests / r.seconds).toFixed(0)} req/s).

| idle | after ${r.requests.toLocaleString("en")} requests | growth |
|---:|---:|---:|
| ${r.idleMb.toFixed(0)} MB | ${r.afterMb.toFixed(0)} MB | ${(r.afterMb - r.idleMb).toFixed(0)} MB |
`);
  headline.push(
    `| handler memory | ${r.idleMb.toFixed(0)} MB idle, ${r.afterMb.toFixed(0)} MB after ${r.requests.toLocaleString("en")} requests | ${signed(r.afterMb - r.idleMb)} MB |`,
  );
}

if (wants("reaper")) {
  const runs: ReaperRun[] = [];
  for (const size of quick ? [500, 1_000] : [10_000, 20_000]) {
    const r = await reaperAtScale(size);
    runs.push(r);
    say(
      `reaper ${r.instances}: ${r.seconds.toFixed(1)} s, ${r.peakRssMb.toFixed(0)} MB, summary ${JSON.stringify(r.summary)}`,
    );
  }
  add(reaperReport(runs, quick));
}

if (wants("reaper-probe")) {
  const r = await reaperProbeAtScale(quick ? 1_000 : 10_000);
  say(
    `reaper-probe: no-probe ${r.noProbe.seconds} s ${r.noProbe.peakRssMb.toFixed(0)} MB ${JSON.stringify(r.noProbe.summary)}; probe ${r.probe.seconds} s ${r.probe.peakRssMb.toFixed(0)} MB ${JSON.stringify(r.probe.summary)}; answered ${r.probesAnswered}`,
  );
  add(reaperProbeReport(r));
}

if (wants("signin")) add(signinReport(await signinBench(quick ? 200 : 1_000)));

if (wants("previews")) add(previewsReport(await previewsBench([1, 16], quick ? 500 : 3_000)));

if (wants("rollout")) {
  add(rolloutReport(await rolloutAtScale(quick ? 200 : 1_000, [10, 100])));
}

// Hours, not minutes (a fleet of 100,000 is written object by object): only when asked for,
// --only=scale. SCALE_SIZES=1000,10000 to stop earlier.
if (only?.split(",").includes("scale")) {
  const sizes = (process.env.SCALE_SIZES ?? (quick ? "1000,5000" : "1000,10000,100000"))
    .split(",")
    .map(Number);
  const result = await scaleBench(sizes, quick ? 50 : 200);
  add(scaleReport(result, sizes.at(-1) ?? 0));
}

const report = `# Benchmarks

Latest figures of \`npm run bench${quick ? " -- --quick" : ""}\`, all from one run against the local control plane
(kube-apiserver v1.36, etcd 3.6, KWOK nodes) on the same machine as the load.

- Date: ${new Date().toISOString()}
- Machine: ${machine()}

| what | figure | against its baseline |
|---|---|---|
${headline.join("\n")}

${sections.join("\n")}
## Reading these figures

Everything shares one machine's 2 cores: etcd, the API server, the controllers, KWOK, the
handler(s), the reaper and the load generator. A request through the handler costs the API
server one GET of the instance's Pod from its watch cache, plus the handler's own work and
the load generator's HTTP client, all on those cores; so the throughput ratios say how much
CPU the handler adds per request here, not what a handler replica on its own node would
serve. Run-to-run noise on this shared machine is large: the baseline's own p50 moved by up
to ±20% between runs on the same day.
`;
const file = resolve(ROOT, process.env.BENCH_REPORT ?? "docs/BENCHMARKS.md");
// The real node's figures come from the e2e suite (npm run test:e2e), not from this run: keep them.
const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
const realNode = previous.indexOf("\n## Real node\n");
writeFileSync(file, realNode === -1 ? report : `${report}${previous.slice(realNode)}`);
say(`wrote ${file}`);
