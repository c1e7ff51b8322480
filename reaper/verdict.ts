/** What one probe path answered: its status and body, or why nothing usable came back. */
export type Fetched = { status: number; body: string } | { error: string };

/** The two unauthenticated answers of an instance's gptme-server (see reaper/probe.ts). */
export interface ProbeResult {
  /** GET /api/v2/server/health */
  health: Fetched;
  /** GET /api/v0/metrics */
  metrics: Fetched;
}

/**
 * What the probe says of an instance the plan found idle. `busy` names the signal that kept
 * it; `unreachable` says why the instance counts as not working (it did not answer usably).
 */
export type Verdict =
  | { verdict: "busy"; generating: number | undefined; sseConnections: number | undefined }
  | { verdict: "idle"; generating: number; sseConnections: number }
  | { verdict: "unreachable"; unreachable: string };

/**
 * Busy when either answer shows work: a session generating, or a client event stream open.
 * One signal is enough to keep an instance, so a busy answer wins over a failed one; idle
 * needs both answers, since a missing one could have been the busy one. Anything else is
 * unreachable: a server that cannot say it is working is deleted as idle.
 */
export function verdictOf(probe: ProbeResult): Verdict {
  const generating = generatingOf(probe.health);
  const sseConnections = sseConnectionsOf(probe.metrics);
  const g = typeof generating === "number" ? generating : undefined;
  const s = typeof sseConnections === "number" ? sseConnections : undefined;
  if ((g ?? 0) > 0 || (s ?? 0) > 0) return { verdict: "busy", generating: g, sseConnections: s };
  if (g !== undefined && s !== undefined)
    return { verdict: "idle", generating: g, sseConnections: s };
  const problems = [generating, sseConnections].filter((p) => typeof p === "string");
  return { verdict: "unreachable", unreachable: problems.join("; ") };
}

/** `generating_count` of the health answer, or what is wrong with the answer. */
export function generatingOf(health: Fetched): number | string {
  if ("error" in health) return `health: ${health.error}`;
  if (health.status !== 200) return `health: HTTP ${health.status}`;
  let count: unknown;
  try {
    count = (JSON.parse(health.body) as { generating_count?: unknown } | null)?.generating_count;
  } catch {
    return "health: not JSON";
  }
  return isCount(count) ? count : "health: no generating_count";
}

const SSE_GAUGE = "gptme_server_sse_connections_active";

/** The open event streams in the Prometheus answer, or what is wrong with the answer. */
export function sseConnectionsOf(metrics: Fetched): number | string {
  if ("error" in metrics) return `metrics: ${metrics.error}`;
  if (metrics.status !== 200) return `metrics: HTTP ${metrics.status}`;
  for (const line of metrics.body.split("\n")) {
    // The gauge has no labels: "gptme_server_sse_connections_active 1.0".
    if (!line.startsWith(`${SSE_GAUGE} `)) continue;
    const value = Number(line.slice(SSE_GAUGE.length + 1).trim());
    // A gauge decremented past an error can read below zero: that is no open stream.
    return Number.isFinite(value) ? Math.max(0, value) : `metrics: bad ${SSE_GAUGE}`;
  }
  return `metrics: no ${SSE_GAUGE}`;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/** The verdict in a few words, as recorded on the ClientPod (`status.lastReap.detail`). */
export function detailOf(verdict: Verdict): string {
  switch (verdict.verdict) {
    case "busy":
    case "idle":
      return `generating ${verdict.generating ?? "?"}, event streams ${verdict.sseConnections ?? "?"}`;
    case "unreachable":
      return verdict.unreachable;
  }
}
