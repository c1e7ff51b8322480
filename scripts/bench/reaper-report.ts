import type { ReaperRun } from "./reaper.js";
import type { reaperProbeAtScale } from "./reaper-probe.js";
import type { rolloutAtScale } from "./rollout.js";
import { ms, pct, type Report } from "./stats.js";

// The reaper's sections of the report: a pass at two fleet sizes, a pass probing every idle
// instance against one that does not, and a rollout pass after pass.

/** Passes over `runs` (two fleet sizes, the second twice the first). */
export function reaperReport(runs: ReaperRun[], quick: boolean): Report {
  const [small, large] = runs;
  const rows = runs.map(
    (r) =>
      `| ${r.instances.toLocaleString("en")} | ${r.expired.toLocaleString("en")} | ${r.summary.deleted} | ${r.summary.failed} | ${r.seconds.toFixed(1)} s | ${(r.summary.durationMs / 1000).toFixed(1)} s | ${r.peakRssMb.toFixed(0)} MB |`,
  );
  const growth = small && large ? (large.seconds / small.seconds).toFixed(2) : "n/a";
  const memGrowth = small && large ? (large.peakRssMb / small.peakRssMb).toFixed(2) : "n/a";
  const section = `## Reaper at scale

One real pass of \`dist/reaper/main.js\` (\`--concurrency 20\`) over ClientPods of which half
were idle for two hours, measured by \`/usr/bin/time\` (wall time and peak RSS of the whole
process, Node start-up included). ClientPods only: KWOK pods for every instance would measure
the scheduler, not the reaper.

| ClientPods | expired | deleted | failed | wall time | pass (reaper's own durationMs) | peak RSS |
|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}

Cost growth for ${large?.instances.toLocaleString("en")} vs ${small?.instances.toLocaleString("en")} instances (2× the fleet): time ${growth}×, peak memory ${memGrowth}×.
`;
  const headline = runs.map(
    (r) =>
      `| reaper, ${r.instances.toLocaleString("en")} ClientPods | ${r.seconds.toFixed(1)} s, ${r.peakRssMb.toFixed(0)} MB peak, ${r.summary.deleted} deleted, ${r.summary.failed} failed | ${r === large ? `2× the fleet: ${growth}× time, ${memGrowth}× memory` : quick ? "quick sizes, no aim" : "aim: < 60 s, < 150 MB"} |`,
  );
  return { section, headline };
}

/** A pass probing every idle instance, against one that does not. */
export function reaperProbeReport(r: Awaited<ReturnType<typeof reaperProbeAtScale>>): Report {
  const row = (what: string, p: typeof r.probe) =>
    `| ${what} | ${p.summary.deleted} | ${p.summary.failed} | ${p.seconds.toFixed(1)} s | ${(p.summary.durationMs / 1000).toFixed(1)} s | ${p.peakRssMb.toFixed(0)} MB |`;
  const added = pct(r.probe.seconds, r.noProbe.seconds);
  const headline = [
    `| reaper probing ${r.candidates.toLocaleString("en")} idle of ${r.instances.toLocaleString("en")} | ${r.probe.seconds.toFixed(1)} s, ${r.probe.peakRssMb.toFixed(0)} MB peak | ${added} time vs --no-probe (${r.noProbe.seconds.toFixed(1)} s, ${r.noProbe.peakRssMb.toFixed(0)} MB); aim: < +50%, < 150 MB |`,
  ];
  const section = `## Reaper probing at scale

${r.instances.toLocaleString("en")} ClientPods, each with its Pod, half idle for two hours; one pass of
\`dist/reaper/main.js --concurrency 20\` with \`--no-probe\`, the idle half made again, then one
pass probing each idle instance. Every Pod's IP and \`http\` port is one tiny listener on
127.0.0.1 answering the health and metrics paths as an idle gptme-server does: a stand-in for
${r.candidates.toLocaleString("en")} servers (it answered ${r.probesAnswered.toLocaleString("en")} requests, two per probe). Setup ${r.setupSeconds.toFixed(0)} s.

| pass | deleted | failed | wall time | pass (durationMs) | peak RSS |
|---|---:|---:|---:|---:|---:|
${row("--no-probe", r.noProbe)}
${row("probing", r.probe)}

Probing adds ${added} to the pass's time.
`;
  return { section, headline };
}

/** Passes one after another until no instance is outdated, at each --max-rollout. */
export function rolloutReport(r: Awaited<ReturnType<typeof rolloutAtScale>>): Report {
  const schedule = 5;
  const rows = r.runs.map((run) => {
    const total = Object.values(run.calls).reduce((a, b) => a + b, 0);
    const byVerb = Object.entries(run.calls)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([call, n]) => `${call} ${n}`)
      .join(", ");
    return `| ${run.maxRollout} | ${run.passes} | ${run.replaced} | ${run.seconds.toFixed(1)} s | ${ms(run.pass.p50)} / ${ms(run.pass.p99)} | ${((run.passes * schedule) / 60).toFixed(1)} h | ${total} (${(total / run.replaced).toFixed(2)} per Pod) | ${byVerb} |`;
  });
  const section = `## Rollout

${r.instances.toLocaleString("en")} idle instances whose Pods run an older revision (a new template); reaper passes
(\`reap()\` in the benchmark process, \`--concurrency 20\`, probing each candidate at a stand-in
idle gptme-server on 127.0.0.1) one after another until none is outdated, at each
\`--max-rollout\`. The last pass is the one that finds nothing left. "At the CronJob's pace": the
passes times its 5-minute schedule, what an operator waits in production. Setup ${r.setupSeconds.toFixed(0)} s.

| --max-rollout | passes | Pods replaced | passes' own time | one pass, p50 / p99 | at the CronJob's pace | API calls | by call |
|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join("\n")}
`;
  const headline = r.runs.map(
    (run) =>
      `| rollout of ${r.instances.toLocaleString("en")}, --max-rollout ${run.maxRollout} | ${run.passes} passes, ${run.seconds.toFixed(1)} s of passes, ${((run.passes * schedule) / 60).toFixed(1)} h at the CronJob's pace | ${Object.values(run.calls).reduce((a, b) => a + b, 0)} API calls |`,
  );
  return { section, headline };
}
