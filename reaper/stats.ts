import pRetry from "p-retry";
import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import {
  addPass,
  type PassCounts,
  REAPER_STATS_NAME,
  reaperStatsObject,
} from "../shared/reaper-stats.js";
import type { PoolSummary } from "./pool-pass.js";
import type { ReapSummary } from "./reap.js";

/**
 * Retries after a conflict, each after a random wait (50 ms doubling, at most 800 ms):
 * passes rarely overlap (the CronJob forbids it; manual Jobs may not), and writers that
 * collided once should not meet again at the same moment.
 */
const RECORD_RETRIES = 7;

/** Another pass wrote the stats between this one's read and its write. */
class StatsChanged extends Error {
  override name = "StatsChanged";
}

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
  let attempt = 0;
  try {
    await pRetry(
      async () => {
        attempt++;
        await tryRecord(kube, pass);
      },
      {
        retries: RECORD_RETRIES,
        minTimeout: 50,
        maxTimeout: 400,
        randomize: true,
        shouldRetry: ({ error }) => error instanceof StatsChanged,
      },
    );
    log.debug({ name: REAPER_STATS_NAME, attempt }, "pass recorded");
    return true;
  } catch (error) {
    log.warn(
      { name: REAPER_STATS_NAME, attempt, error: (error as Error).message },
      "could not record the pass",
    );
    return false;
  }
}

/** One read-modify-write; StatsChanged when another writer got in between. */
async function tryRecord(kube: Kube, pass: PassCounts): Promise<void> {
  const current = await kube.configMaps.get(REAPER_STATS_NAME);
  const resourceVersion = current?.metadata?.resourceVersion;
  const written =
    !current || !resourceVersion
      ? (await kube.configMaps.create(reaperStatsObject(addPass(undefined, pass)))).created
      : (await kube.configMaps.patchDataIfUnchanged(
          REAPER_STATS_NAME,
          resourceVersion,
          addPass(current.data, pass),
        )) === "patched";
  if (!written) throw new StatsChanged("the stats changed (or were made) since they were read");
}
