import pLimit from "p-limit";
import { MANAGED_SELECTOR } from "../shared/clientpod.js";
import type { ExpiryDefaults } from "../shared/expiry.js";
import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import { mountedClaimsOf } from "../shared/workspace.js";
import { execute, keepBusy, type Outcome, planned, signalFields } from "./act.js";
import { removeExpiredCodes } from "./codes.js";
import {
  planClientPods,
  planOrphans,
  planWorkspaces,
  podsByName,
  type ReapAction,
} from "./plan.js";
import { probeInstance } from "./probe.js";
import { listClaims, listPods, PAGE_SIZE } from "./read.js";
import { type Verdict, verdictOf } from "./verdict.js";

export { PAGE_SIZE } from "./read.js";

export interface ReapOptions {
  defaults: ExpiryDefaults;
  /** A workspace no instance has used for this long is deleted. */
  workspaceRetentionMs: number;
  dryRun: boolean;
  concurrency: number;
  now: () => Date;
  log: Logger;
  /**
   * Ask each idle instance's gptme-server whether it is working before deleting it, each
   * probe bounded by `timeoutMs`; false: the clock alone decides.
   */
  probe: false | { timeoutMs: number };
  /**
   * Runs for each action once it is judged (probed) and before the reaper writes (deletes
   * it, or records it busy); tests use it to make races deterministic.
   */
  beforeWrite?: (action: ReapAction) => Promise<void>;
}

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
  failed: number;
  dryRun: boolean;
  durationMs: number;
  /** Expired sign-in codes removed (counted apart from instances and workspaces). */
  expiredCodes: number;
}

/**
 * One pass over the fleet: read, plan, delete what expired, report. Instances first; then,
 * in a pass of its own, the workspaces that no instance has used for the retention.
 */
export async function reap(kube: Kube, options: ReapOptions): Promise<ReapSummary> {
  const started = performance.now();
  const { log, dryRun } = options;
  // Pods first: see planReap for why the order matters. ClientPods are planned page by page
  // and dropped: what stays in memory is a uid and a name per instance and the actions.
  const now = options.now();
  const pods = await listPods(kube);
  const podIndex = podsByName(pods);
  const liveOwners = new Set<string>();
  const instances = new Set<string>();
  const actions: ReapAction[] = [];
  let checked = 0;
  let token: string | undefined;
  do {
    const page = await kube.clientPods.list({
      labelSelector: MANAGED_SELECTOR,
      limit: PAGE_SIZE,
      continue: token,
    });
    for (const name of page.invalid)
      log.warn({ name }, "skipping a ClientPod that does not match the schema");
    for (const cp of page.items) {
      liveOwners.add(cp.metadata.uid);
      instances.add(cp.metadata.name);
    }
    actions.push(...planClientPods(page.items, podIndex, now, options.defaults));
    checked += page.items.length;
    token = page.continue;
  } while (token);
  actions.push(...planOrphans(pods, liveOwners));
  log.debug({ clientPods: checked, pods: pods.length, actions: actions.length }, "planned");

  // Probes share the deletes' concurrency: each action is probed, then at once deleted,
  // so the time between "not working" and the delete stays as short as the delete call.
  const limit = pLimit(options.concurrency);
  const outcomes = await Promise.all(
    actions.map((action) => limit(() => judgeAndAct(kube, action, options))),
  );

  // Read after the instances' pass, so the claims of instances it just deleted carry their
  // last use; judged against the Pods read at the start (a Pod deleted since still counts
  // as mounting: the claim waits for the next pass). A claim made or used after this read
  // fails the delete's precondition.
  const claims = await listClaims(kube);
  const retired = planWorkspaces(
    claims,
    mountedClaimsOf(pods),
    instances,
    options.now(),
    options.workspaceRetentionMs,
  );
  outcomes.push(
    ...(await Promise.all(retired.map((action) => limit(() => act(kube, action, options))))),
  );

  const codes = await removeExpiredCodes(kube, options);

  const count = (match: (o: Outcome) => boolean) => outcomes.filter(match).length;
  const summary: ReapSummary = {
    checked,
    workspaces: claims.length,
    deleted: count((o) => o.result === "deleted"),
    skipped: count((o) => o.result === "skipped"),
    busy: count((o) => o.verdict === "busy"),
    unreachable: count((o) => o.verdict === "unreachable" && o.result === "deleted"),
    failed: count((o) => o.result === "failed") + codes.failed,
    dryRun,
    durationMs: Math.round(performance.now() - started),
    expiredCodes: dryRun ? codes.expired : codes.removed,
  };
  log.info(summary, "summary");
  return summary;
}

/**
 * An idle instance is probed first (max-lifetime is a hard ceiling; ended and orphaned
 * Pods serve nothing): busy, it stays and its activity is recorded; idle or unreachable,
 * it goes as the plan said.
 */
async function judgeAndAct(kube: Kube, action: ReapAction, options: ReapOptions): Promise<Outcome> {
  const { probe } = options;
  let verdict: Verdict | undefined;
  if (probe && action.kind === "clientpod" && action.reason === "idle") {
    verdict = action.target
      ? verdictOf(await probeInstance(action.target, probe.timeoutMs))
      : { verdict: "unreachable", unreachable: "no running Pod with an IP" };
    if (verdict.verdict === "busy") return keepBusy(kube, action, verdict, options);
  }
  return act(kube, action, options, verdict);
}

/** Deletes what the plan said (after the test hook), or reports it in a dry run. */
async function act(
  kube: Kube,
  action: ReapAction,
  options: ReapOptions,
  verdict?: Verdict,
): Promise<Outcome> {
  const signal = verdict && signalFields(verdict);
  await options.beforeWrite?.(action);
  const result = options.dryRun
    ? planned(action, options.log, signal)
    : await execute(kube, action, options, signal);
  return { result, verdict: verdict?.verdict };
}
