import type { previewsBench } from "./previews.js";
import type { PathStats } from "./proxy-lib.js";
import { ms, type Report, ratio } from "./stats.js";

// The previews section of the report: a preview host's added latency beside the gateway's.

const ROUNDS_NOTE = "two rounds of each path, the order rotated";

export function previewsReport(levels: Awaited<ReturnType<typeof previewsBench>>): Report {
  const t = (x: PathStats) => `${x.rps.toFixed(0)} / ${ms(x.p50)} / ${ms(x.p99)}`;
  const rows = levels.map(
    (l) =>
      `| ${l.concurrency} | ${t(l.apiDirect)} | ${t(l.apiGateway)} | ${t(l.previewDirect)} | ${t(l.previewHost)} | ${t(l.gptmeDirect)} | ${t(l.gptmeHost)} |`,
  );
  const added = (a: PathStats, b: PathStats) => `${ms(a.p50 - b.p50)} / ${ms(a.p99 - b.p99)}`;
  const overhead = levels.map(
    (l) =>
      `| ${l.concurrency} | ${added(l.apiGateway, l.apiDirect)} | ${added(l.previewHost, l.previewDirect)} | ${ratio(l.previewHost.p50 - l.previewDirect.p50, l.apiGateway.p50 - l.apiDirect.p50)} / ${ratio(l.previewHost.p99 - l.previewDirect.p99, l.apiGateway.p99 - l.apiDirect.p99)} | ${added(l.gptmeHost, l.gptmeDirect)} |`,
  );
  const section = `## Previews

A request on a preview host (\`<port>-<name>.<PREVIEW_DOMAIN>\`: session cookie checked, instance
looked up, activity, the gateway's proxy) against the same request sent straight to the pod's
\`/preview/<port>/\`, beside the instance gateway's own added latency for API traffic, one handler
process, in the same run at each concurrency (${ROUNDS_NOTE}). Upstreams: the minimal node:http
server at an instance's loopback pod IP (answers any path: the proxy's own ceiling), and the
real gptme-server 0.35.1, whose \`/preview/<port>/\` proxies (Flask + requests, a new connection
each time) to a minimal app on the pod's loopback.

req/s / p50 / p99 per path:

| concurrency | API direct | API via gateway | /preview/ direct | via preview host | gptme /preview/ direct | gptme via preview host |
|---:|---|---|---|---|---|---|
${rows.join("\n")}

Added latency (p50 / p99):

| concurrency | gateway adds (API) | preview host adds | preview's added / gateway's (p50 / p99; aim ≤ 1.2×) | preview host adds to gptme |
|---:|---:|---:|---:|---:|
${overhead.join("\n")}
`;
  const headline = levels.map(
    (l) =>
      `| previews, c=${l.concurrency}, minimal upstream | adds p50 ${ms(l.previewHost.p50 - l.previewDirect.p50)}, p99 ${ms(l.previewHost.p99 - l.previewDirect.p99)} | ${ratio(l.previewHost.p50 - l.previewDirect.p50, l.apiGateway.p50 - l.apiDirect.p50)} of the gateway's added p50 for API traffic (aim ≤ 1.2×) |`,
  );
  return { section, headline };
}
