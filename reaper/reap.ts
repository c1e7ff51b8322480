import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import pLimit, { type LimitFunction } from "p-limit";
import { currentTemplateOf } from "../shared/config/plans.js";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { revisionOf } from "../shared/instance/revision.js";
import type { Kube } from "../shared/kube/client.js";
import { joinByName } from "../shared/kube/join.js";
import type { Outcome } from "./act.js";
import { BloomFilter } from "./bloom.js";
import { removeExpiredCodes } from "./expired-codes.js";
import { act, judgeAndAct, rollOut } from "./judge.js";
import type { ReapOptions } from "./options.js";
import { claimsInUse, planClientPods, planWorkspaces, podsByName } from "./plan.js";
import { clientPodPages, PAGE_SIZE, podPages, startedFirst, workspacePages } from "./read.js";
import { retryTransient } from "./retry.js";
import { LongestIdle, planRollout } from "./rollout-plan.js";
import { ownersNamedOtherwise, planStrays, planUnread } from "./strays.js";
import { type ReapSummary, Tally } from "./tally.js";

export { PAGE_SIZE } from "./read.js";
export type { ReapSummary } from "./tally.js";

/**
 * Outdated instances kept as rollout candidates beyond --max-rollout, for those found busy
 * or changed when their turn comes (see LongestIdle).
 */
const ROLLOUT_RESERVE = 1_000;

/**
 * One pass over the fleet: read, plan, delete what expired, report. The fleet is read as
 * batches of ClientPods with the Pods of the same names (join.ts), each batch planned and its
 * deletions started while the next is read; what a pass keeps of the fleet is a few pages,
 * the actions under way, and two fixed-size sets (bloom.ts). Then, in a pass of its own, the
 * workspaces no instance has used for the retention, and expired sign-in codes.
 */
export async function reap(kube: Kube, options: ReapOptions): Promise<ReapSummary> {
  const started = performance.now();
  const { log, dryRun } = options;
  const now = options.now();
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const tally = new Tally();
  const stopAt = started + (options.timeLimitMs ?? Number.POSITIVE_INFINITY);
  let complete = true;
  /** Whether the pass may still start work; `skipping`: it skips some if not (incomplete). */
  const inTime = (skipping = false) => {
    const yes = performance.now() < stopAt;
    if (!yes && skipping) complete = false;
    return yes;
  };
  const work = new Work(options.concurrency, tally, () => inTime());
  /** Uids of the ClientPods read whose Pod is named otherwise (strays.ts). */
  const owners = new BloomFilter();
  /** Names of the workspace claims an instance or a Pod read uses. */
  const inUse = new BloomFilter();
  const current = new CurrentRevisions(kube, options.rollout);
  const outdated = options.rollout && new LongestIdle(options.rollout.max + ROLLOUT_RESERVE);

  // Pods first: the Pod list is then a snapshot older than the ClientPods', and a Pod whose
  // ClientPod is missing from that is an orphan, unless it was made since (strays.ts reads
  // the owner again before anything goes).
  const pods = await startedFirst(podPages(kube, { log, pageSize }));
  let checked = 0;
  for await (const batch of joinByName(clientPodPages(kube, { log, pageSize }), pods)) {
    if (!inTime(true)) break;
    const { left: clientPods, right: podsRead } = batch;
    checked += clientPods.length;
    const index = podsByName(podsRead);
    const leaving = planClientPods(clientPods, index, now, options.defaults);
    for (const action of leaving) work.start(() => judgeAndAct(kube, action, options));
    for (const uid of ownersNamedOtherwise(clientPods)) owners.add(uid);
    for (const name of claimsInUse(clientPods, podsRead)) inUse.add(name);
    const strays = planStrays(clientPods, podsRead, owners);
    for (const action of strays.orphans) work.start(() => act(kube, action, options));
    for (const pod of strays.unread) work.start(() => judgeUnread(kube, pod, now, options));
    if (outdated && options.rollout) {
      // A plan's template may have changed since its instances were made: theirs is its now.
      const { plans } = options;
      const templateOf = (cp: ClientPod) =>
        plans ? currentTemplateOf(cp.spec, plans) : cp.spec.podTemplate;
      const revisions = await current.of(clientPods.map(templateOf));
      const names = new Set(leaving.map((a) => a.name));
      outdated.offer(
        planRollout(clientPods, index, now, revisions, options.rollout.idleMs, names, templateOf),
      );
    }
    // Reading runs ahead of deleting by at most two pages of actions.
    await work.below(2 * pageSize);
  }
  await work.drained();
  log.debug({ clientPods: checked, ...tally.counts }, "instances judged");

  if (outdated && options.rollout && inTime(true)) {
    const outcomes = await rollOut(kube, outdated.take(), options.rollout.max, options, work.limit);
    for (const outcome of outcomes) tally.add(outcome);
  }

  // Read after the instances' pass, so the claims of instances it just deleted carry their
  // last use; judged against the Pods read then (a Pod deleted since still counts as
  // mounting: the claim waits for the next pass). A claim made or used after its read fails
  // the delete's precondition.
  let workspaces = 0;
  for await (const claims of inTime(true) ? workspacePages(kube, { log, pageSize }) : []) {
    if (!inTime(true)) break;
    workspaces += claims.length;
    const retired = planWorkspaces(claims, inUse, options.now(), options.workspaceRetentionMs);
    for (const action of retired) work.start(() => act(kube, action, options));
    await work.below(2 * pageSize);
  }
  await work.drained();

  const codes = inTime(true)
    ? await removeExpiredCodes(kube, options)
    : { expired: 0, removed: 0, failed: 0 };
  if (tally.counts.deferred > 0) complete = false;
  if (!complete) {
    log.warn(
      { timeLimitSeconds: (options.timeLimitMs ?? 0) / 1000, deferred: tally.counts.deferred },
      "the pass reached its time limit: what it did not judge or carry out waits for the next",
    );
  }

  const { counts } = tally;
  const summary: ReapSummary = {
    checked,
    workspaces,
    deleted: counts.deleted,
    skipped: counts.skipped,
    busy: counts.busy,
    unreachable: counts.unreachable,
    outdated: counts.outdated,
    failed: counts.failed + codes.failed,
    deferred: counts.deferred,
    complete,
    dryRun,
    durationMs: Math.round(performance.now() - started),
    expiredCodes: dryRun ? codes.expired : codes.removed,
    reaped: counts.reaped,
    keptBusy: counts.keptBusy,
  };
  log.info(summary, "summary");
  return summary;
}

/**
 * A Pod whose owner was not read with it (strays.ts), judged once its owner is read again,
 * by name, from etcd (not the cache: an owner made a moment ago must be found).
 */
async function judgeUnread(
  kube: Kube,
  pod: V1Pod,
  now: Date,
  options: ReapOptions,
): Promise<Outcome | undefined> {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller)?.name;
  let read: Awaited<ReturnType<Kube["clientPods"]["get"]>>;
  try {
    read = owner ? await retryTransient(() => kube.clientPods.get(owner)) : undefined;
  } catch (error) {
    options.log.error(
      { name: pod.metadata?.name, owner, error: (error as Error).message },
      "could not read a Pod's ClientPod",
    );
    return { result: "failed" };
  }
  const [action] = planUnread(pod, read, now, options.defaults);
  return action && judgeAndAct(kube, action, options);
}

/**
 * The pass's deletes and probes: at most `concurrency` at once, each counted as it finishes
 * (nothing of it kept); one whose turn comes after the pass's time limit is not run but
 * counted as deferred. A task that throws (not a failed delete, which is an outcome: a defect
 * or a test's assertion) ends the pass once the others have finished.
 */
class Work {
  readonly limit: LimitFunction;
  private running = 0;
  private waiting: (() => void)[] = [];
  private failure: { error: unknown } | undefined;

  constructor(
    concurrency: number,
    private readonly tally: Tally,
    private readonly inTime: () => boolean,
  ) {
    this.limit = pLimit(concurrency);
  }

  start(task: () => Promise<Outcome | undefined>): void {
    this.running++;
    const deferred: Outcome = { result: "deferred" };
    this.limit(() => (this.inTime() ? task() : Promise.resolve(deferred)))
      .then(
        (outcome) => outcome && this.tally.add(outcome),
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => {
        this.running--;
        for (const wake of this.waiting.splice(0)) wake();
      });
  }

  /** Until at most `count` tasks are queued or running. */
  async below(count: number): Promise<void> {
    while (this.running > (this.failure ? 0 : count)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    if (this.failure) throw this.failure.error;
  }

  drained(): Promise<void> {
    return this.below(0);
  }
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
