import type { V1PodTemplate } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { currentTemplateOf } from "../shared/config/plans.js";
import { type ClientPod, MANAGED_SELECTOR } from "../shared/instance/clientpod.js";
import { revisionOf } from "../shared/instance/revision.js";
import { mountedWorkspacesOf } from "../shared/instance/workspace.js";
import type { Kube } from "../shared/kube/client.js";
import type { ReapReason } from "../shared/reaper-stats.js";
import { execute, keepBusy, leaveBusy, type Outcome, planned, signalFields } from "./act.js";
import { removeExpiredCodes } from "./expired-codes.js";
import type { ReapOptions } from "./options.js";
import {
  planClientPods,
  planOrphans,
  planRollout,
  planWorkspaces,
  podsByName,
  type ReapAction,
} from "./plan.js";
import { type ProbeTarget, probeInstance } from "./probe.js";
import { listPods, listWorkspaces, PAGE_SIZE } from "./read.js";
import { retryTransient } from "./retry.js";
import { type Verdict, verdictOf } from "./verdict.js";

export { PAGE_SIZE } from "./read.js";

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
  dryRun: boolean;
  durationMs: number;
  /** Expired sign-in codes removed (counted apart from instances and workspaces). */
  expiredCodes: number;
  /** What was deleted, by reason (outdated: Pods replaced); in a dry run, what would be. */
  reaped: Partial<Record<ReapReason, number>>;
  /** Of the skipped, those kept because their gptme-server was working, by reason. */
  keptBusy: Partial<Record<ReapReason, number>>;
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
  const outdated: ReapAction[] = [];
  const current = new CurrentRevisions(kube, options.rollout);
  let checked = 0;
  let token: string | undefined;
  do {
    const query = { labelSelector: MANAGED_SELECTOR, limit: PAGE_SIZE, continue: token };
    const page = await retryTransient(() => kube.clientPods.list(query));
    for (const name of page.invalid)
      log.warn({ name }, "skipping a ClientPod that does not match the schema");
    for (const cp of page.items) {
      liveOwners.add(cp.metadata.uid);
      instances.add(cp.metadata.name);
    }
    const leaving = planClientPods(page.items, podIndex, now, options.defaults);
    actions.push(...leaving);
    if (options.rollout) {
      // A plan's template may have changed since its instances were made: theirs is its now.
      const plans = options.plans;
      const templateOf = (cp: ClientPod) =>
        plans ? currentTemplateOf(cp.spec, plans) : cp.spec.podTemplate;
      const revisions = await current.of(page.items.map(templateOf));
      const names = new Set(leaving.map((a) => a.name));
      outdated.push(
        ...planRollout(
          page.items,
          podIndex,
          now,
          revisions,
          options.rollout.idleMs,
          names,
          templateOf,
        ),
      );
    }
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
  if (options.rollout) {
    outcomes.push(...(await rollOut(kube, outdated, options.rollout.max, options, limit)));
  }

  // Read after the instances' pass, so the claims of instances it just deleted carry their
  // last use; judged against the Pods read at the start (a Pod deleted since still counts
  // as mounting: the claim waits for the next pass). A claim made or used after this read
  // fails the delete's precondition.
  const claims = await listWorkspaces(kube);
  const retired = planWorkspaces(
    claims,
    mountedWorkspacesOf(pods),
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
    deleted: count((o) => o.result === "deleted" && o.reason !== "outdated"),
    skipped: count((o) => o.result === "skipped"),
    busy: count((o) => o.verdict === "busy"),
    unreachable: count(
      (o) => o.verdict === "unreachable" && o.result === "deleted" && o.reason !== "outdated",
    ),
    outdated: count((o) => o.result === "deleted" && o.reason === "outdated"),
    failed: count((o) => o.result === "failed") + codes.failed,
    dryRun,
    durationMs: Math.round(performance.now() - started),
    expiredCodes: dryRun ? codes.expired : codes.removed,
    reaped: byReason(outcomes.filter((o) => o.result === "deleted")),
    keptBusy: byReason(outcomes.filter((o) => o.verdict === "busy")),
  };
  log.info(summary, "summary");
  return summary;
}

function byReason(outcomes: Outcome[]): Partial<Record<ReapReason, number>> {
  const counts: Partial<Record<ReapReason, number>> = {};
  for (const { reason } of outcomes) if (reason) counts[reason] = (counts[reason] ?? 0) + 1;
  return counts;
}

/**
 * An idle instance is probed first (max-lifetime is a hard ceiling; ended and orphaned
 * Pods serve nothing): busy, it stays and its activity is recorded; idle or unreachable,
 * it goes as the plan said. An outdated instance's Pod is probed the same way; busy, it is
 * left for a later pass.
 */
async function judgeAndAct(kube: Kube, action: ReapAction, options: ReapOptions): Promise<Outcome> {
  const { probe } = options;
  let verdict: Verdict | undefined;
  const rolling = action.reason === "outdated";
  if (probe && ((action.kind === "clientpod" && action.reason === "idle") || rolling)) {
    verdict = action.target
      ? await probeWithRetries(action.target, probe.timeoutMs)
      : { verdict: "unreachable", unreachable: "no running Pod with an IP" };
    // A rollout is maintenance: an instance that cannot say it is idle keeps its Pod.
    if (rolling && verdict.verdict !== "idle") return leaveBusy(action, verdict, options);
    if (verdict.verdict === "busy") return keepBusy(kube, action, verdict, options);
  }
  return act(kube, action, options, verdict);
}

/** How often a refusing instance is asked again (see probeWithRetries). */
const REFUSED_RETRY_MS = 250;

/**
 * The probe's verdict, asked again while the connection is refused, for at most half the
 * probe's bound, so a server that is really gone still costs less than one bound. A reaper
 * Job's pod is new at every pass, and a network policy implementation may not have admitted
 * its address yet in its first moments (seen on the real node: kube-router refused the first
 * probes of a fresh reaper pod); a server that really is gone keeps refusing.
 */
async function probeWithRetries(target: ProbeTarget, timeoutMs: number): Promise<Verdict> {
  const retryUntil = performance.now() + timeoutMs / 2;
  let verdict = verdictOf(await probeInstance(target, timeoutMs));
  while (
    verdict.verdict === "unreachable" &&
    verdict.unreachable.includes("ECONNREFUSED") &&
    performance.now() + REFUSED_RETRY_MS < retryUntil
  ) {
    await new Promise((resolve) => setTimeout(resolve, REFUSED_RETRY_MS));
    verdict = verdictOf(await probeInstance(target, Math.ceil(retryUntil - performance.now())));
  }
  return verdict;
}

/**
 * Replaces outdated Pods, longest idle first, until `max` are replaced or none is left: in
 * batches of what remains of `max`, so a busy or changed instance gives its place to the next
 * one without probing the whole fleet.
 */
async function rollOut(
  kube: Kube,
  candidates: ReapAction[],
  max: number,
  options: ReapOptions,
  limit: ReturnType<typeof pLimit>,
): Promise<Outcome[]> {
  candidates.sort((a, b) => (b.idleSeconds ?? 0) - (a.idleSeconds ?? 0));
  const outcomes: Outcome[] = [];
  let replaced = 0;
  let next = 0;
  while (replaced < max && next < candidates.length) {
    const batch = candidates.slice(next, next + max - replaced);
    next += batch.length;
    const results = await Promise.all(
      batch.map((action) => limit(() => judgeAndAct(kube, action, options))),
    );
    outcomes.push(...results);
    replaced += results.filter((o) => o.result === "deleted").length;
  }
  return outcomes;
}

/** The current revision of each template, each read once per pass. */
class CurrentRevisions {
  private readonly known = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly kube: Kube,
    private readonly rollout: ReapOptions["rollout"],
  ) {}

  async of(names: string[]): Promise<Map<string, string | undefined>> {
    const settings = this.rollout ? this.rollout.revision : undefined;
    for (const name of names) {
      if (!settings || this.known.has(name)) continue;
      this.known.set(
        name,
        this.kube.podTemplates
          .get(name)
          .then((t: V1PodTemplate | undefined) => t && revisionOf(t, settings)),
      );
    }
    const entries = await Promise.all(
      [...this.known].map(async ([name, revision]) => [name, await revision] as const),
    );
    return new Map(entries);
  }
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
  return { result, verdict: verdict?.verdict, reason: action.reason };
}
