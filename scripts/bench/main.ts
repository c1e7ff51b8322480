import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { coldPath } from "./cold.js";
import { machine, ms, ROOT, ratio, say } from "./lib.js";
import { memory } from "./memory.js";
import { type ReaperRun, reaperAtScale } from "./reaper.js";
import { storm } from "./storm.js";
import { warmPath } from "./warm.js";

const quick = process.argv.includes("--quick");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);

const sections: string[] = [];
const headline: string[] = [];
const wants = (name: string) => !only || only.split(",").includes(name);
const pct = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(0)}%`;

if (wants("warm")) {
  const levels = await warmPath([1, 16, 64], quick ? 500 : 3_000);
  const rows = levels.map(
    (l) =>
      `| ${l.concurrency} | ${l.handler.rps.toFixed(0)} | ${l.baseline.rps.toFixed(0)} | ${ratio(l.handler.rps, l.baseline.rps)} | ${ms(l.handler.p50)} | ${ms(l.baseline.p50)} | ${pct(l.handler.p50, l.baseline.p50)} | ${ms(l.handler.p99)} | ${ms(l.baseline.p99)} | ${l.callsPerRequest.toFixed(2)} |`,
  );
  sections.push(`## Warm path

\`GET /instances/:id\` for 16 ready instances against one handler process, against the baseline:
the bare API-server GET of the same ClientPods with the same client library (client-node,
keep-alive) at the same concurrency. ${levels[0]?.handler.count} requests per level, closed loop.

| concurrency | handler req/s | baseline req/s | throughput ratio | handler p50 | baseline p50 | p50 overhead | handler p99 | baseline p99 | API calls / request |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}
`);
  for (const l of levels) {
    headline.push(
      `| warm, c=${l.concurrency} | ${l.handler.rps.toFixed(0)} req/s, p50 ${ms(l.handler.p50)}, p99 ${ms(l.handler.p99)} | ${ratio(l.handler.rps, l.baseline.rps)} throughput, +${pct(l.handler.p50, l.baseline.p50)} p50 vs bare GET |`,
    );
  }
}

if (wants("cold")) {
  const results = await coldPath(quick ? 5 : 20, 20);
  const rows = results.map(
    (r) =>
      `| ${r.mode} | ${ms(r.handler.p50)} | ${ms(r.baseline.p50)} | ${ratio(r.handler.p50, r.baseline.p50)} | ${ms(r.handler.p99)} | ${ms(r.baseline.p99)} | ${r.callsPerRequest.toFixed(1)} |`,
  );
  sections.push(`## Cold path

Time from request to the ready answer for new instances (\`?wait=30\`), against the baseline:
creating the same Pod directly and waiting (watch) until it is Ready.

| mode | handler p50 | baseline p50 | ratio | handler p99 | baseline p99 | API calls / cold request |
|---|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}
`);
  for (const r of results) {
    headline.push(
      `| cold, ${r.mode} | p50 ${ms(r.handler.p50)}, p99 ${ms(r.handler.p99)} | ${ratio(r.handler.p50, r.baseline.p50)} of create-Pod-and-wait |`,
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
    `| handler memory | ${r.idleMb.toFixed(0)} MB idle, ${r.afterMb.toFixed(0)} MB after ${r.requests.toLocaleString("en")} requests | +${(r.afterMb - r.idleMb).toFixed(0)} MB |`,
  );
}

if (wants("reaper")) {
  const sizes = quick ? [500, 1_000] : [10_000, 20_000];
  const runs: ReaperRun[] = [];
  for (const size of sizes) runs.push(await reaperAtScale(size));
  const [small, large] = runs;
  const rows = runs.map(
    (r) =>
      `| ${r.instances.toLocaleString("en")} | ${r.expired.toLocaleString("en")} | ${r.summary.deleted} | ${r.summary.failed} | ${r.seconds.toFixed(1)} s | ${(r.summary.durationMs / 1000).toFixed(1)} s | ${r.peakRssMb.toFixed(0)} MB |`,
  );
  const growth = small && large ? (large.seconds / small.seconds).toFixed(2) : "n/a";
  const memGrowth = small && large ? (large.peakRssMb / small.peakRssMb).toFixed(2) : "n/a";
  sections.push(`## Reaper at scale

One real pass of \`dist/reaper/main.js\` (\`--concurrency 20\`) over ClientPods of which half
were idle for two hours, measured by \`/usr/bin/time\` (wall time and peak RSS of the whole
process, Node start-up included). ClientPods only: KWOK pods for every instance would measure
the scheduler, not the reaper.

| ClientPods | expired | deleted | failed | wall time | pass (reaper's own durationMs) | peak RSS |
|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}

Cost growth for ${sizes[1]?.toLocaleString("en")} vs ${sizes[0]?.toLocaleString("en")} instances (2× the fleet): time ${growth}×, peak memory ${memGrowth}×.
`);
  for (const r of runs)
    say(
      `reaper ${r.instances}: ${r.seconds.toFixed(1)} s, ${r.peakRssMb.toFixed(0)} MB, summary ${JSON.stringify(r.summary)}`,
    );
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
handler(s), the reaper and the load generator. A request through the handler costs the
API server the same GET as the baseline (of the instance's Pod, a larger object than the
ClientPod the baseline reads) plus the handler's own work and the load generator's HTTP
client, all on those cores; so the throughput ratios say how much CPU the handler adds per
request here, not what a handler replica on its own node would serve.
`;
const file = resolve(ROOT, process.env.BENCH_REPORT ?? "docs/BENCHMARKS.md");
writeFileSync(file, report);
say(`wrote ${file}`);
