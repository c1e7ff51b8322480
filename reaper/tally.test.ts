import { describe, expect, it } from "vitest";
import { Tally } from "./tally.js";

describe("Tally", () => {
  it("counts outcomes as the summary reports them", () => {
    const tally = new Tally();
    tally.add({ result: "deleted", verdict: "idle", reason: "idle" });
    tally.add({ result: "deleted", verdict: "unreachable", reason: "idle" });
    tally.add({ result: "deleted", reason: "orphan" });
    tally.add({ result: "deleted", verdict: "idle", reason: "outdated" });
    tally.add({ result: "skipped", verdict: "busy", reason: "idle" });
    tally.add({ result: "skipped", verdict: "busy", reason: "outdated" });
    tally.add({ result: "failed", reason: "pod-ended" });
    tally.add({ result: "deferred" });
    expect(tally.counts).toEqual({
      // Outdated Pods replaced count apart: their instances stay.
      deleted: 3,
      outdated: 1,
      unreachable: 1,
      skipped: 2,
      busy: 2,
      failed: 1,
      deferred: 1,
      reaped: { idle: 2, orphan: 1, outdated: 1 },
      keptBusy: { idle: 1, outdated: 1 },
    });
  });
});
