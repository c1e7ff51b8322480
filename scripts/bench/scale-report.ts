import type { ScaleResult, SizeResult } from "./scale.js";
import type { PathCost } from "./scale-measure.js";
import { ms, type Report } from "./stats.js";

// The scale section of docs/BENCHMARKS.md, from one run of scaleBench.

const n = (x: number) => x.toLocaleString("en");
const mb = (x: number) => `${x.toFixed(0)} MB`;
const per = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
const pair = (c: PathCost) => `${ms(c.stats.p50)} / ${ms(c.stats.p99)}`;

const PATHS: [string, (s: SizeResult) => PathCost][] = [
  ["warm `GET /instances/:id`, c=1", (s) => s.warm1],
  ["warm `GET /instances/:id`, c=16", (s) => s.warm16],
  ["gateway, instance not cached yet", (s) => s.gatewayUncached],
  ["gateway, cached", (s) => s.gatewayCached],
  ["`GET /instances` (one client's 5)", (s) => s.listOwn],
  ["`/admin/pods`, first page", (s) => s.adminFirstPage],
  ["login code (`POST /instances/:id/login`)", (s) => s.login],
  ["its exchange (`POST /api/v1/operator/auth/exchange`)", (s) => s.exchange],
  ["cold start (`?wait=30`)", (s) => s.cold],
  ["pool claim (`?wait=30`)", (s) => s.claim],
];

export function scaleReport(r: ScaleResult, wanted: number): Report {
  const sizes = r.sizes;
  const first = sizes[0];
  const last = sizes.at(-1);
  const grows = Boolean(first && last && first !== last);
  const header = (what: string, withGrowth = grows) =>
    `| ${what} | ${sizes.map((s) => n(s.instances)).join(" | ")} |${withGrowth ? ` ${n(last?.instances ?? 0)} / ${n(first?.instances ?? 0)} |` : ""}\n|---|${sizes.map(() => "---:").join("|")}|${withGrowth ? "---:|" : ""}`;
  const growth = (f: (s: SizeResult) => number) =>
    first && last && grows ? ` ${(f(last) / f(first)).toFixed(2)}× |` : "";
  const latency = PATHS.map(
    ([what, of]) =>
      `| ${what} | ${sizes.map((s) => pair(of(s))).join(" | ")} |${growth((s) => of(s).stats.p50)}`,
  );
  const costs = PATHS.map(
    ([what, of]) =>
      `| ${what} | ${sizes.map((s) => `${per(of(s).calls)} / ${per(of(s).apiRequests)} / ${per(of(s).etcdWrites)}${of(s).unexpected ? ` (${of(s).unexpected} unexpected)` : ""}`).join(" | ")} |`,
  );
  const row = (what: string, f: (s: SizeResult) => string, g?: (s: SizeResult) => number) =>
    `| ${what} | ${sizes.map(f).join(" | ")} |${g ? growth(g) : grows ? " |" : ""}`;
  const memory = [
    row(
      "reaper pass, `--dry-run` (reads and probes, deletes nothing): wall time / peak RSS",
      (s) => `${s.reaperDryRun.seconds.toFixed(1)} s / ${mb(s.reaperDryRun.peakRssMb)}`,
      (s) => s.reaperDryRun.seconds,
    ),
    row(
      "reaper pass, wall time",
      (s) => `${s.reaper.seconds.toFixed(1)} s`,
      (s) => s.reaper.seconds,
    ),
    row(
      "reaper pass, peak RSS",
      (s) => mb(s.reaper.peakRssMb),
      (s) => s.reaper.peakRssMb,
    ),
    row(
      "reaper pass: deleted / failed",
      (s) => `${n(s.reaper.summary.deleted)} / ${s.reaper.summary.failed}`,
    ),
    row(
      "handler RSS, fresh / after the gateway touched every active instance",
      (s) => `${mb(s.touchAll.rssBeforeMb)} / ${mb(s.touchAll.rssAfterMb)}`,
      (s) => s.touchAll.rssAfterMb,
    ),
    row(
      "handler heap after a collection, fresh / after: used / used (total), array buffers",
      (s) =>
        `${mb(s.touchAll.heapUsedBeforeMb)} / ${mb(s.touchAll.heapUsedAfterMb)} (${mb(s.touchAll.heapTotalAfterMb)}), ${mb(s.touchAll.arrayBuffersAfterMb)}`,
      (s) => s.touchAll.heapUsedAfterMb,
    ),
    row(
      "touching every active instance: requests, time, failed, etcd writes per request",
      (s) =>
        `${n(s.touchAll.requests)}, ${s.touchAll.seconds.toFixed(0)} s, ${s.touchAll.failed}, ${per(s.touchAll.etcdWritesPerRequest)}`,
    ),
    row(
      "API server RSS",
      (s) => mb(s.cluster.apiServerRssMb),
      (s) => s.cluster.apiServerRssMb,
    ),
    row(
      "controller-manager RSS / scheduler RSS",
      (s) => `${mb(s.cluster.controllerManagerRssMb)} / ${mb(s.cluster.schedulerRssMb)}`,
      (s) => s.cluster.controllerManagerRssMb,
    ),
    row(
      "etcd RSS",
      (s) => mb(s.cluster.etcdRssMb),
      (s) => s.cluster.etcdRssMb,
    ),
    row(
      "etcd database, file / in use",
      (s) => `${mb(s.cluster.etcdDbMb)} / ${mb(s.cluster.etcdDbInUseMb)}`,
      (s) => s.cluster.etcdDbInUseMb,
    ),
    row(
      "building the fleet (this size's new instances), instances/s",
      (s, i = sizes.indexOf(s)) =>
        `${((s.instances - (sizes[i - 1]?.instances ?? 0)) / s.buildSeconds).toFixed(0)}`,
    ),
  ];
  const bytes = Object.entries(r.objectBytes)
    .map(([kind, b]) => `${kind} ${n(b)} B`)
    .join(", ");
  const section = `## Scale

One fleet grown in one namespace to ${sizes.map((s) => n(s.instances)).join(", ")} instances, each as the handler leaves
it (ClientPod with its status, instance slot, workspace claim, token Secret, Pod from the production template,
running and seen answering), written directly, 16 instances in flight. The Pods are bound to
Node objects no controller runs (this process renews their Leases and plays the kubelet's part
for deletions) and share one pod IP where one listener answers as an idle gptme-server. One in
ten instances was last used a day ago, the others ten minutes before they were written (past
\`ACTIVITY_INTERVAL\` at every size, so that an instance's first gateway request records its
activity at every size). At each size, a fresh handler process
(\`MAX_INSTANCES=1000000\`): latencies (p50 / p99, closed loop; warm over 64 instances; the
gateway's first request to instances the process has not seen, ten at a time, each ten then
asked again while their lookups are kept, 1 s; a login code for a running instance, then each
code's exchange), cold starts and pool claims one at a time (their Pods on the KWOK
nodes), then a pass of
\`dist/reaper/main.js --idle-timeout 12h --dry-run\` and a real one (probing each idle instance; its CronJob has
\`activeDeadlineSeconds: 240\` and 256 Mi), the reaped instances made again for the next size, and one
gateway request to every active instance. JSON size of one object of each kind: ${bytes}.${
    last && last.instances < wanted
      ? `

**The fleet stopped growing at ${n(last.instances)} of ${n(wanted)} instances**: ${
          r.stoppedBy === "deadline"
            ? `the run's time ran out (\`SCALE_DEADLINE\`: growing ${n(wanted)} instances at the rate this
machine built them would have taken longer than the run had).`
            : `the machine's available
memory fell below its floor (8 GB by default; the machine is shared with other clusters, and an out-of-memory
kill would take someone else's process). The control plane's memory at that size is below.`
        }`
      : ""
  }

Latency, p50 / p99, and growth of the p50 from the smallest fleet to the largest:

${header("path")}
${latency.join("\n")}

Cost per request: the handler's Kubernetes API calls / requests the API server answered / etcd
writes (the last two are everyone's: they include the control plane's own background, a few
requests a second):

${header("path", false)}
${costs.join("\n")}

Memory, the reaper's pass, and what the control plane holds:

${header("")}
${memory.join("\n")}
`;
  const headline: string[] = [];
  if (first && last) {
    headline.push(
      `| scale, warm c=1 at ${n(first.instances)} → ${n(last.instances)} | p50 ${ms(first.warm1.stats.p50)} → ${ms(last.warm1.stats.p50)} | ${(last.warm1.stats.p50 / first.warm1.stats.p50).toFixed(2)}× (aim ≤ 1.2×) |`,
      `| scale, gateway uncached / cached at ${n(last.instances)} | p50 ${ms(last.gatewayUncached.stats.p50)} / ${ms(last.gatewayCached.stats.p50)} | ${(last.gatewayUncached.stats.p50 / first.gatewayUncached.stats.p50).toFixed(2)}× / ${(last.gatewayCached.stats.p50 / first.gatewayCached.stats.p50).toFixed(2)}× of ${n(first.instances)} (aim ≤ 1.2×) |`,
      `| scale, login / its exchange at ${n(last.instances)} | p50 ${ms(last.login.stats.p50)} / ${ms(last.exchange.stats.p50)} | ${(last.login.stats.p50 / first.login.stats.p50).toFixed(2)}× / ${(last.exchange.stats.p50 / first.exchange.stats.p50).toFixed(2)}× of ${n(first.instances)} (aim ≤ 1.2×) |`,
      `| scale, reaper pass over ${n(last.instances)} (${n(last.reaper.summary.deleted)} deleted) | ${last.reaper.seconds.toFixed(1)} s, ${mb(last.reaper.peakRssMb)} peak | aim < 120 s, < 200 MB |`,
      `| scale, handler RSS after the gateway touched ${n(last.touchAll.requests)} instances | ${mb(last.touchAll.rssAfterMb)} | aim < 200 MB |`,
    );
  }
  return { section, headline };
}
