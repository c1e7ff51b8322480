import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { machine, ROOT, say } from "./lib.js";
import { type ReaperRun, reaperAtScale } from "./reaper.js";

const quick = process.argv.includes("--quick");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);

const sections: string[] = [];
const wants = (name: string) => !only || only.split(",").includes(name);

if (wants("reaper")) {
  const sizes = quick ? [1_000, 2_000] : [10_000, 20_000];
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

${sections.join("\n")}`;
const file = resolve(ROOT, process.env.BENCH_REPORT ?? "docs/BENCHMARKS.md");
writeFileSync(file, report);
say(`wrote ${file}`);
