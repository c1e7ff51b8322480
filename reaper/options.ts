import type { Plans } from "../shared/config/plans.js";
import type { ExpiryDefaults } from "../shared/instance/expiry.js";
import type { RevisionSettings } from "../shared/instance/revision.js";
import type { Logger } from "../shared/log.js";
import type { ReapAction } from "./plan.js";

// What one pass is told: by reaper/main.ts from flags and the environment, by tests directly.

export interface ReapOptions {
  defaults: ExpiryDefaults;
  /** A workspace no instance has used for this long is deleted. */
  workspaceRetentionMs: number;
  dryRun: boolean;
  concurrency: number;
  /**
   * How long the pass may start new work (ms from its start): past it, it reads no further,
   * starts no delete, and reports the planned ones as deferred, so that it ends within its
   * Job's deadline with its summary and stats instead of being killed; the next pass goes on.
   * Unset: no limit.
   */
  timeLimitMs?: number | undefined;
  /** Objects per list call (default PAGE_SIZE); tests read in small pages to cross them. */
  pageSize?: number;
  now: () => Date;
  log: Logger;
  /**
   * Ask each idle instance's gptme-server whether it is working before deleting it, each
   * probe bounded by `timeoutMs`; false: the clock alone decides. `admissionWaitMs`: how long
   * the process's first probes are asked again while no gptme-server has answered it yet (a
   * fresh Job pod's address may not be admitted by network policy yet; see reaper/judge.ts).
   */
  probe: false | { timeoutMs: number; admissionWaitMs?: number };
  /**
   * Replace the Pods of instances made from an older revision once idle `idleMs` and not
   * busy, at most `max` per pass; false or unset: no rollout (ROLLOUT=off).
   */
  rollout?: false | { idleMs: number; max: number; revision: RevisionSettings };
  /**
   * The plans (PLANS_FILE): an instance's current template is its plan's; unset, or a plan
   * no longer offered, the one it records it was made from.
   */
  plans?: Plans;
  /**
   * Runs for each action once it is judged (probed) and before the reaper writes (deletes
   * it, or records it busy); tests use it to make races deterministic.
   */
  beforeWrite?: (action: ReapAction) => Promise<void>;
}
