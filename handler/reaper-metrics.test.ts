import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { addPass, type ReaperStats, reaperStatsOf } from "../shared/reaper-stats.js";
import { REAPER_STATS_TTL_MS, ReaperMetrics, ReaperStatsCache } from "./reaper-metrics.js";

const AT = new Date("2026-01-01T10:00:00.000Z");
const stats = reaperStatsOf(
  addPass(undefined, {
    at: AT,
    reaped: { idle: 3, orphan: 1 },
    keptBusy: { idle: 2 },
    failed: 0,
    aborted: false,
  }),
);

/** The sample lines (not HELP or TYPE) of an exposition. */
const samples = (text: string) =>
  text.split("\n").filter((l) => l.startsWith("fleet_reaper_") && !l.startsWith("#"));

describe("ReaperMetrics", () => {
  it("exports the reaper's counters and timestamps", async () => {
    const registry = new Registry();
    new ReaperMetrics(registry).readFrom(async () => stats);
    const lines = samples(await registry.metrics());
    expect(lines).toContain('fleet_reaper_reaped_total{reason="idle"} 3');
    expect(lines).toContain('fleet_reaper_reaped_total{reason="orphan"} 1');
    expect(lines).toContain('fleet_reaper_reaped_total{reason="max-lifetime"} 0');
    expect(lines).toContain('fleet_reaper_kept_busy_total{reason="idle"} 2');
    expect(lines).toContain("fleet_reaper_failed_total 0");
    expect(lines).toContain("fleet_reaper_passes_total 1");
    expect(lines).toContain("fleet_reaper_passes_aborted_total 0");
    expect(lines).toContain(`fleet_reaper_last_pass_timestamp_seconds ${AT.getTime() / 1000}`);
    expect(lines).toContain(`fleet_reaper_last_success_timestamp_seconds ${AT.getTime() / 1000}`);
  });

  it("has no series while there are no stats, and drops them when they go", async () => {
    const registry = new Registry();
    const metrics = new ReaperMetrics(registry);
    let current: ReaperStats | undefined;
    metrics.readFrom(async () => current);
    const before = await registry.metrics();
    expect(samples(before)).toEqual([]);
    // The types are still declared, so dashboards and alerts name known metrics.
    expect(before).toContain("# TYPE fleet_reaper_passes_total counter");
    current = stats;
    expect(samples(await registry.metrics()).length).toBeGreaterThan(5);
    current = undefined;
    expect(samples(await registry.metrics())).toEqual([]);
  });

  it("has no last success before a pass without failures", async () => {
    const registry = new Registry();
    const failing = reaperStatsOf(
      addPass(undefined, { at: AT, reaped: {}, keptBusy: {}, failed: 2, aborted: false }),
    );
    new ReaperMetrics(registry).readFrom(async () => failing);
    const lines = samples(await registry.metrics());
    expect(lines).toContain("fleet_reaper_failed_total 2");
    expect(lines.some((l) => l.startsWith("fleet_reaper_last_success_"))).toBe(false);
  });
});

describe("ReaperStatsCache", () => {
  it("reads at most once per TTL, concurrent scrapes sharing the read", async () => {
    let clock = 0;
    let reads = 0;
    const cache = new ReaperStatsCache(
      async () => {
        reads++;
        return stats;
      },
      () => clock,
    );
    await Promise.all([cache.current(), cache.current(), cache.current()]);
    expect(reads).toBe(1);
    clock += REAPER_STATS_TTL_MS - 1;
    expect(await cache.current()).toBe(stats);
    expect(reads).toBe(1);
    clock += 1;
    await cache.current();
    expect(reads).toBe(2);
  });

  it("keeps the last values when a read fails, and forgets them once the object is gone", async () => {
    let clock = 0;
    let answer: () => Promise<ReaperStats | undefined> = async () => stats;
    const cache = new ReaperStatsCache(
      () => answer(),
      () => clock,
    );
    expect(await cache.current()).toBe(stats);
    answer = () => Promise.reject(new Error("the API server did not answer in time"));
    clock += REAPER_STATS_TTL_MS;
    expect(await cache.current()).toBe(stats);
    answer = async () => undefined;
    clock += REAPER_STATS_TTL_MS;
    expect(await cache.current()).toBeUndefined();
  });
});
