import { Counter, Gauge, type Registry } from "prom-client";
import type { ReaperStats } from "../shared/reaper-stats.js";

/** How long the reaper's stats, once read, answer scrapes before they are read again. */
export const REAPER_STATS_TTL_MS = 15_000;

/**
 * The reaper's stats (the ConfigMap it records each pass in), read at scrape time: at most
 * once per TTL per replica, concurrent scrapes sharing one read. A failed read keeps the
 * last values (the Kubernetes error is counted by the API layer's observer).
 */
export class ReaperStatsCache {
  private stats: ReaperStats | undefined;
  private readAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly read: () => Promise<ReaperStats | undefined>,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = REAPER_STATS_TTL_MS,
  ) {}

  async current(): Promise<ReaperStats | undefined> {
    if (!this.pending && this.now() - this.readAt >= this.ttlMs) {
      this.readAt = this.now();
      this.pending = this.read()
        .then(
          (stats) => {
            this.stats = stats;
          },
          () => undefined,
        )
        .finally(() => {
          this.pending = undefined;
        });
    }
    await this.pending;
    return this.stats;
  }
}

/**
 * The reaper's counters on the handler's /metrics. Every replica reads the same ConfigMap
 * and exports the same values: aggregate with max, never sum. No series while the
 * ConfigMap does not exist (no pass recorded yet, or not readable since this replica started).
 */
export class ReaperMetrics {
  private source: () => Promise<ReaperStats | undefined> = async () => undefined;

  constructor(registry: Registry) {
    const read = () => this.source();
    byReason(registry, read, {
      name: "fleet_reaper_reaped_total",
      help: "Objects the reaper deleted (instances, orphaned Pods, workspaces; outdated Pods replaced), by reason, since its stats ConfigMap was made.",
      counts: (s) => s.reaped,
    });
    byReason(registry, read, {
      name: "fleet_reaper_kept_busy_total",
      help: "Idle or outdated instances the reaper kept because their gptme-server was working, by reason.",
      counts: (s) => s.keptBusy,
    });
    single(registry, read, Counter, {
      name: "fleet_reaper_failed_total",
      help: "Reaper actions that failed (deletes, activity writes, code removals, pool changes).",
      value: (s) => s.failed,
    });
    single(registry, read, Counter, {
      name: "fleet_reaper_passes_total",
      help: "Reaper passes recorded (dry runs are not).",
      value: (s) => s.passes,
    });
    single(registry, read, Counter, {
      name: "fleet_reaper_passes_aborted_total",
      help: "Reaper passes that stopped before finishing (the fleet could not be read).",
      value: (s) => s.passesAborted,
    });
    single(registry, read, Gauge, {
      name: "fleet_reaper_last_pass_timestamp_seconds",
      help: "When the reaper's last recorded pass ended (Unix time).",
      value: (s) => seconds(s.lastPass),
    });
    single(registry, read, Gauge, {
      name: "fleet_reaper_last_success_timestamp_seconds",
      help: "When the last reaper pass with no failed action ended (Unix time).",
      value: (s) => seconds(s.lastSuccess),
    });
  }

  /** Where the stats are read from at each scrape, once the API layer exists. */
  readFrom(source: () => Promise<ReaperStats | undefined>): void {
    this.source = source;
  }
}

type Read = () => Promise<ReaperStats | undefined>;

function byReason(
  registry: Registry,
  read: Read,
  metric: { name: string; help: string; counts: (s: ReaperStats) => Record<string, number> },
): void {
  new Counter({
    name: metric.name,
    help: metric.help,
    labelNames: ["reason"] as const,
    registers: [registry],
    async collect() {
      const stats = await read();
      this.reset();
      for (const [reason, count] of Object.entries(stats ? metric.counts(stats) : {})) {
        this.inc({ reason }, count);
      }
    },
  });
}

/** An unlabelled counter or gauge: its one series only while there is a value. */
function single(
  registry: Registry,
  read: Read,
  kind: typeof Counter | typeof Gauge,
  metric: { name: string; help: string; value: (s: ReaperStats) => number | undefined },
): void {
  new kind({
    name: metric.name,
    help: metric.help,
    registers: [registry],
    async collect(this: Counter | Gauge) {
      const stats = await read();
      const value = stats && metric.value(stats);
      this.reset();
      // reset() leaves an unlabelled metric at 0; remove() leaves it without a series.
      if (value === undefined) this.remove();
      else this.inc(value);
    },
  });
}

function seconds(time: Date | undefined): number | undefined {
  return time === undefined ? undefined : time.getTime() / 1000;
}
