import { describe, expect, it } from "vitest";
import { addPass, type PassCounts, reaperStatsObject, reaperStatsOf } from "./reaper-stats.js";

const T1 = new Date("2026-01-01T10:00:00.000Z");
const T2 = new Date("2026-01-01T10:05:00.000Z");

const pass = (counts: Partial<PassCounts> = {}): PassCounts => ({
  at: T1,
  reaped: {},
  keptBusy: {},
  failed: 0,
  aborted: false,
  ...counts,
});

describe("addPass", () => {
  it("starts every known reason at zero on the first pass", () => {
    const data = addPass(
      undefined,
      pass({ reaped: { idle: 2, orphan: 1 }, keptBusy: { idle: 1 } }),
    );
    expect(data).toEqual({
      "reaped.idle": "2",
      "reaped.max-lifetime": "0",
      "reaped.pod-ended": "0",
      "reaped.orphan": "1",
      "reaped.workspace-retention": "0",
      "reaped.outdated": "0",
      "keptBusy.idle": "1",
      "keptBusy.outdated": "0",
      failed: "0",
      passes: "1",
      passesAborted: "0",
      lastPass: T1.toISOString(),
      lastSuccess: T1.toISOString(),
    });
  });

  it("sums a second pass into the first", () => {
    const first = addPass(undefined, pass({ reaped: { idle: 2 }, failed: 1 }));
    const second = addPass(first, pass({ at: T2, reaped: { idle: 1, "max-lifetime": 3 } }));
    const stats = reaperStatsOf(second);
    expect(stats.reaped).toMatchObject({ idle: 3, "max-lifetime": 3, orphan: 0 });
    expect(stats).toMatchObject({ failed: 1, passes: 2, passesAborted: 0 });
    expect(stats.lastPass).toEqual(T2);
    expect(stats.lastSuccess).toEqual(T2);
  });

  it("moves the last success only for a pass with no failure, and counts an aborted pass", () => {
    const ok = addPass(undefined, pass());
    const failed = addPass(ok, pass({ at: T2, failed: 2 }));
    expect(reaperStatsOf(failed)).toMatchObject({ failed: 2, lastPass: T2, lastSuccess: T1 });
    const aborted = addPass(ok, pass({ at: T2, aborted: true }));
    expect(reaperStatsOf(aborted)).toMatchObject({
      passes: 2,
      passesAborted: 1,
      lastPass: T2,
      lastSuccess: T1,
    });
  });

  it("never moves a timestamp back (overlapping passes recording out of order)", () => {
    const later = addPass(undefined, pass({ at: T2 }));
    const stats = reaperStatsOf(addPass(later, pass({ at: T1 })));
    expect(stats).toMatchObject({ passes: 2, lastPass: T2, lastSuccess: T2 });
  });

  it("keeps keys and reasons it does not know, and treats unreadable values as zero", () => {
    const data = addPass(
      {
        "reaped.some-new-reason": "4",
        "note.owner": "ops",
        "reaped.idle": "garbage",
        passes: "-3",
      },
      pass({ reaped: { idle: 1 } }),
    );
    expect(data["note.owner"]).toBe("ops");
    expect(data["reaped.some-new-reason"]).toBe("4");
    expect(data["reaped.idle"]).toBe("1");
    expect(data.passes).toBe("1");
  });

  it("ignores negative counts and reasons that could not be label values", () => {
    const data = addPass(undefined, pass({ reaped: { idle: -5, "Bad Reason!": 2 } }));
    expect(data["reaped.idle"]).toBe("0");
    expect(Object.keys(data).some((k) => k.includes("Bad"))).toBe(false);
  });
});

describe("reaperStatsOf", () => {
  it("reads nothing as zero and no timestamps", () => {
    expect(reaperStatsOf(undefined)).toEqual({
      reaped: {},
      keptBusy: {},
      failed: 0,
      passes: 0,
      passesAborted: 0,
      lastPass: undefined,
      lastSuccess: undefined,
    });
  });
});

describe("reaperStatsObject", () => {
  it("is labelled as the fleet's, of its own kind", () => {
    expect(reaperStatsObject({}).metadata).toEqual({
      name: "fleet-reaper-stats",
      labels: { "app.kubernetes.io/managed-by": "gptme-fleet", "gptme.ai/kind": "reaper-stats" },
    });
  });
});
