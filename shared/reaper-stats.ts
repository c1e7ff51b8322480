import type { V1ConfigMap } from "@kubernetes/client-node";
import { LABEL_KIND, LABEL_MANAGED_BY, MANAGED_BY } from "./instance/clientpod.js";

// The reaper is a Job: nothing of it is left to scrape once a pass ends. So each real pass
// adds its counts to one ConfigMap, and the handler exports them on /metrics. Counters are
// cumulative since the ConfigMap was made; deleting it starts them again from zero, which
// Prometheus reads as a counter reset.

/** The ConfigMap holding the reaper's counters, in the fleet's namespace. */
export const REAPER_STATS_NAME = "fleet-reaper-stats";
export const REAPER_STATS_KIND = "reaper-stats";

/** Why the reaper deletes something (shared/: the handler exports counts by reason). */
export const REAP_REASONS = [
  "idle",
  "max-lifetime",
  "pod-ended",
  "orphan",
  "workspace-retention",
  "outdated",
] as const;
export type ReapReason = (typeof REAP_REASONS)[number];

/** The reasons under which the reaper probes and can find an instance working. */
export const BUSY_REASONS = ["idle", "outdated"] as const satisfies readonly ReapReason[];

/** What one pass did, as the reaper adds it. */
export interface PassCounts {
  /** When the pass ended. */
  at: Date;
  /** Objects deleted (instances, Pods, workspaces; outdated Pods replaced), by reason. */
  reaped: Partial<Record<string, number>>;
  /** Instances left alone because their gptme-server was working, by reason. */
  keptBusy: Partial<Record<string, number>>;
  /** Actions that failed (deletes, activity writes, code removals, pool changes). */
  failed: number;
  /** The pass stopped before it finished (it could not read the fleet). */
  aborted: boolean;
}

/** The counters as read back, for /metrics. */
export interface ReaperStats {
  reaped: Record<string, number>;
  keptBusy: Record<string, number>;
  failed: number;
  passes: number;
  passesAborted: number;
  lastPass: Date | undefined;
  /** The last pass that finished with no failed action. */
  lastSuccess: Date | undefined;
}

// ConfigMap keys, readable with `kubectl get cm fleet-reaper-stats -o yaml`.
const REAPED = "reaped.";
const KEPT_BUSY = "keptBusy.";
const FAILED = "failed";
const PASSES = "passes";
const PASSES_ABORTED = "passesAborted";
const LAST_PASS = "lastPass";
const LAST_SUCCESS = "lastSuccess";
/** A reason as a key suffix and a label value: what ReapReason spells, and no more. */
const REASON = /^[a-z][a-z-]{0,62}$/;

/** The counters a ConfigMap's data holds; a missing or unreadable value counts as zero. */
export function reaperStatsOf(data: Readonly<Record<string, string>> = {}): ReaperStats {
  const byPrefix = (prefix: string) => {
    const counts: Record<string, number> = {};
    for (const [key, value] of Object.entries(data)) {
      const reason = key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
      if (reason && REASON.test(reason)) counts[reason] = countOf(value);
    }
    return counts;
  };
  return {
    reaped: byPrefix(REAPED),
    keptBusy: byPrefix(KEPT_BUSY),
    failed: countOf(data[FAILED]),
    passes: countOf(data[PASSES]),
    passesAborted: countOf(data[PASSES_ABORTED]),
    lastPass: timeOf(data[LAST_PASS]),
    lastSuccess: timeOf(data[LAST_SUCCESS]),
  };
}

/**
 * The data after adding one pass: every counter summed, timestamps moved forward only (two
 * overlapping passes may record out of order), keys it does not know kept as they are (a
 * newer reaper's). Every known reason is written, zero included, so each has a series from
 * the first pass on and `increase()` sees its first deletion.
 */
export function addPass(
  data: Readonly<Record<string, string>> | undefined,
  pass: PassCounts,
): Record<string, string> {
  const stats = reaperStatsOf(data);
  const next: Record<string, string> = { ...data };
  const sum = (key: string, current: number, added: number | undefined) => {
    next[key] = String(current + Math.max(0, added ?? 0));
  };
  const reasons = (known: readonly string[], counts: Partial<Record<string, number>>) =>
    new Set([...known, ...Object.keys(counts).filter((r) => REASON.test(r))]);
  for (const reason of reasons(REAP_REASONS, pass.reaped)) {
    sum(REAPED + reason, stats.reaped[reason] ?? 0, pass.reaped[reason]);
  }
  for (const reason of reasons(BUSY_REASONS, pass.keptBusy)) {
    sum(KEPT_BUSY + reason, stats.keptBusy[reason] ?? 0, pass.keptBusy[reason]);
  }
  sum(FAILED, stats.failed, pass.failed);
  sum(PASSES, stats.passes, 1);
  sum(PASSES_ABORTED, stats.passesAborted, pass.aborted ? 1 : 0);
  next[LAST_PASS] = latest(stats.lastPass, pass.at).toISOString();
  if (pass.failed === 0 && !pass.aborted) {
    next[LAST_SUCCESS] = latest(stats.lastSuccess, pass.at).toISOString();
  }
  return next;
}

/** A new stats ConfigMap holding `data`. */
export function reaperStatsObject(data: Record<string, string>): V1ConfigMap {
  return {
    metadata: {
      name: REAPER_STATS_NAME,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_KIND]: REAPER_STATS_KIND },
    },
    data,
  };
}

function countOf(value: string | undefined): number {
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : 0;
}

function timeOf(value: string | undefined): Date | undefined {
  const time = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
}

function latest(known: Date | undefined, at: Date): Date {
  return known && known.getTime() > at.getTime() ? known : at;
}
