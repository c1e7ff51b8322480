import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import {
  addPass,
  type PassCounts,
  REAPER_STATS_NAME,
  reaperStatsObject,
} from "../shared/reaper-stats.js";
import type { PoolSummary } from "./pool.js";
import type { ReapSummary } from "./reap.js";

/**
 * Tries at recording one pass. Two passes rarely overlap (the CronJob forbids it; a manual
 * Job may not), so a handful of conflicts is already unusual.
 */
const RECORD_ATTEMPTS = 5;

/** What a finished pass adds to the stats: its deletions, busy instances and failures. */
export function passCountsOf(
  summary: ReapSummary,
  pool: PoolSummary | undefined,
  at: Date,
): PassCounts {
  return {
    at,
    reaped: summary.reaped,
    keptBusy: summary.keptBusy,
    failed: summary.failed + (pool?.failed ?? 0),
    aborted: false,
  };
}

/** A pass that stopped before it finished: its counts are lost, its failure is not. */
export function abortedPass(at: Date): PassCounts {
  return { at, reaped: {}, keptBusy: {}, failed: 0, aborted: true };
}

/**
 * Adds one pass to the stats ConfigMap (shared/reaper-stats.ts), made if absent: a read,
 * then a write that holds only if nothing was written since (resourceVersion), read again
 * on a conflict. Never throws: the stats are for dashboards, and a pass that did its work
 * must not fail (or change its exit code) because they could not be written.
 */
export async function recordPass(kube: Kube, pass: PassCounts, log: Logger): Promise<boolean> {
  try {
    for (let attempt = 1; attempt <= RECORD_ATTEMPTS; attempt++) {
      if (await tryRecord(kube, pass)) {
        log.debug({ name: REAPER_STATS_NAME, attempt }, "pass recorded");
        return true;
      }
    }
    log.warn(
      { name: REAPER_STATS_NAME, attempts: RECORD_ATTEMPTS },
      "could not record the pass: the stats kept changing under it",
    );
  } catch (error) {
    log.warn(
      { name: REAPER_STATS_NAME, error: (error as Error).message },
      "could not record the pass",
    );
  }
  return false;
}

/** One read-modify-write; false when another writer got in between. */
async function tryRecord(kube: Kube, pass: PassCounts): Promise<boolean> {
  const current = await kube.configMaps.get(REAPER_STATS_NAME);
  const resourceVersion = current?.metadata?.resourceVersion;
  if (!current || !resourceVersion) {
    const made = await kube.configMaps.create(reaperStatsObject(addPass(undefined, pass)));
    return made.created;
  }
  const written = await kube.configMaps.patchDataIfUnchanged(
    REAPER_STATS_NAME,
    resourceVersion,
    addPass(current.data, pass),
  );
  return written === "patched";
}
