import type { signinBench } from "./signin.js";
import { ms, pct, type Report, ratio } from "./stats.js";

// The sign-in section of the report: login and its exchange against the bare API calls they
// cannot do without, and what a JWT adds to the warm path.

export function signinReport(r: Awaited<ReturnType<typeof signinBench>>): Report {
  const row = (what: string, x: { p50: number; p99: number; mean: number }, extra: string) =>
    `| ${what} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.mean)} | ${extra} |`;
  const added = r.warmJwt.p50 - r.warmKey.p50;
  const section = `## Sign-in

One handler process (\`CLIENT_AUTH=keys,jwt\`, an ES256 JWKS on loopback), one request at a
time, ${r.requests} of each: \`POST /instances/:id/login\` for a ready instance (a code minted: one
ConfigMap created), \`POST /api/v1/operator/auth/exchange\` of those codes (the code's object
read, then deleted while the ClientPod is read), and the warm \`GET /instances/:id\` with a JWT
and with an API key. Each takes turns with its baseline (the bare API calls it cannot do
without, same client library, straight to the API server) in four rounds of the same run.

| request | p50 | p99 | mean | Kubernetes API calls / request |
|---|---:|---:|---:|---|
${row("login (code minted)", r.login, r.login.calls.toFixed(2))}
${row("exchange", r.exchange, `${r.exchange.calls.toFixed(2)} (writes: ${r.exchange.writes.toFixed(2)})`)}
${row("baseline: create a code's ConfigMap", r.bareCreate, "1")}
${row("baseline: get and delete (uid precondition) a code's ConfigMap", r.bareDelete, "2")}
${row("warm GET, X-API-Key", r.warmKey, "")}
${row("warm GET, Bearer JWT", r.warmJwt, "")}

Against the API calls they cannot do without, in the same run: login p50 ${ratio(r.login.p50, r.bareCreate.p50)}
the bare create's, exchange p50 ${ratio(r.exchange.p50, r.bareDelete.p50)} the bare read and delete's.
A JWT adds ${ms(added)} to the warm GET's p50 (${pct(r.warmJwt.p50, r.warmKey.p50)}): a token
verified once is remembered by its SHA-256 for up to a minute (never past its \`exp\`). The
verifier on its own, in the benchmark process: a token's first verification (ES256 signature)
p50 ${ms(r.verifyFirst.p50)}, p99 ${ms(r.verifyFirst.p99)}; a remembered token p50
${(r.verifyRemembered.p50 * 1000).toFixed(1)} µs, p99 ${(r.verifyRemembered.p99 * 1000).toFixed(1)} µs.
`;
  const headline = [
    `| sign-in | login p50 ${ms(r.login.p50)} (${r.login.calls.toFixed(1)} calls), exchange p50 ${ms(r.exchange.p50)}, p99 ${ms(r.exchange.p99)} (${r.exchange.calls.toFixed(1)} calls, ${r.exchange.writes.toFixed(1)} write) | ${ratio(r.login.p50, r.bareCreate.p50)} / ${ratio(r.exchange.p50, r.bareDelete.p50)} p50 vs the bare create / read+delete; warm GET with a JWT ${added >= 0 ? "+" : ""}${ms(added)} p50 vs an API key |`,
  ];
  return { section, headline };
}
