import type { ReapReason } from "../shared/reaper-stats.js";
import type { Outcome } from "./act.js";

export interface ReapSummary {
  /** ClientPods judged. */
  checked: number;
  /** Workspace claims judged (their deletions count in deleted, skipped and failed). */
  workspaces: number;
  deleted: number;
  /** Judged but left alone: touched since read, already gone, or busy. */
  skipped: number;
  /** Of the skipped: idle by the clock, kept because their gptme-server was working. */
  busy: number;
  /** Of the deleted: idle, and their gptme-server gave no usable answer within the bound. */
  unreachable: number;
  /** Pods of outdated instances replaced (not counted in deleted: the instances stay). */
  outdated: number;
  failed: number;
  /** Planned but left for the next pass: the pass reached its time limit (--time-limit). */
  deferred: number;
  /** False when the pass stopped at its time limit: some of the fleet was not judged. */
  complete: boolean;
  dryRun: boolean;
  durationMs: number;
  /** Expired sign-in codes removed (counted apart from instances and workspaces). */
  expiredCodes: number;
  /** What was deleted, by reason (outdated: Pods replaced); in a dry run, what would be. */
  reaped: Partial<Record<ReapReason, number>>;
  /** Of the skipped, those kept because their gptme-server was working, by reason. */
  keptBusy: Partial<Record<ReapReason, number>>;
}

type Counts = Pick<
  ReapSummary,
  | "deleted"
  | "skipped"
  | "busy"
  | "unreachable"
  | "outdated"
  | "failed"
  | "deferred"
  | "reaped"
  | "keptBusy"
>;

/** A pass's outcomes counted as they come, so that none has to be kept (pure). */
export class Tally {
  readonly counts: Counts = {
    deleted: 0,
    skipped: 0,
    busy: 0,
    unreachable: 0,
    outdated: 0,
    failed: 0,
    deferred: 0,
    reaped: {},
    keptBusy: {},
  };

  add(outcome: Outcome): void {
    const { result, verdict, reason } = outcome;
    const c = this.counts;
    if (result === "deleted") {
      if (reason === "outdated") c.outdated++;
      else {
        c.deleted++;
        if (verdict === "unreachable") c.unreachable++;
      }
      if (reason) c.reaped[reason] = (c.reaped[reason] ?? 0) + 1;
    }
    if (result === "skipped") c.skipped++;
    if (result === "failed") c.failed++;
    if (result === "deferred") c.deferred++;
    if (verdict === "busy") {
      c.busy++;
      if (reason) c.keptBusy[reason] = (c.keptBusy[reason] ?? 0) + 1;
    }
  }
}
