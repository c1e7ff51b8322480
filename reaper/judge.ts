import type { V1Pod } from "@kubernetes/client-node";
import type { LimitFunction } from "p-limit";
import type { Kube } from "../shared/kube/client.js";
import { execute, keepBusy, leaveBusy, type Outcome, planned, signalFields } from "./act.js";
import type { ReapOptions } from "./options.js";
import { type ReapAction, targetOf } from "./plan.js";
import { type ProbeTarget, probeInstance } from "./probe.js";
import { retryTransient } from "./retry.js";
import { rolloutOfUnread } from "./rollout-plan.js";
import { type Verdict, verdictOf } from "./verdict.js";

// Each action of the plan, judged and carried out on its own: probed if its instance might be
// working, then deleted (or kept), one JSON line each.

/**
 * An idle instance is probed first (max-lifetime is a hard ceiling; ended and orphaned
 * Pods serve nothing): busy, it stays and its activity is recorded; idle or unreachable,
 * it goes as the plan said. An outdated instance's Pod is probed the same way; busy, it is
 * left for a later pass.
 */
export async function judgeAndAct(
  kube: Kube,
  action: ReapAction,
  options: ReapOptions,
): Promise<Outcome> {
  const { probe } = options;
  let verdict: Verdict | undefined;
  const rolling = action.reason === "outdated";
  if (probe && ((action.kind === "clientpod" && action.reason === "idle") || rolling)) {
    let target = action.target;
    if (!target && action.unread) {
      try {
        target = await unreadTarget(kube, action.unread);
      } catch (error) {
        // Not knowing where it answers is no answer: it stays for the next pass.
        options.log.error(
          { name: action.name, pod: action.unread.pod, error: (error as Error).message },
          "could not read the instance's Pod",
        );
        return { result: "failed", reason: action.reason };
      }
    }
    verdict = target
      ? await probeWithRetries(target, probe)
      : { verdict: "unreachable", unreachable: "no running Pod with an IP" };
    // A rollout is maintenance: an instance that cannot say it is idle keeps its Pod.
    if (rolling && verdict.verdict !== "idle") return leaveBusy(action, verdict, options);
    if (verdict.verdict === "busy") return keepBusy(kube, action, verdict, options);
  }
  return act(kube, action, options, verdict);
}

/** An instance's Pod that was not read with it (ReapAction.unread), read by name from the cache. */
async function unreadTarget(
  kube: Kube,
  { pod, ownerUid }: NonNullable<ReapAction["unread"]>,
): Promise<ProbeTarget | undefined> {
  return targetOf(await retryTransient(() => kube.pods.get(pod, { fromCache: true })), ownerUid);
}

/** How often a refusing instance is asked again (see probeWithRetries). */
const REFUSED_RETRY_MS = 250;

/**
 * Whether any gptme-server has answered this process yet. Network policy admits a new pod's
 * address a moment after the pod starts (seen on the real node: kube-router refused, then
 * dropped, the first probes of a fresh reaper Job's pod for over a second under load), so
 * until one answer came back a failure says as much about the reaper as about the instance.
 * Per process, like the address it is about.
 */
let answeredOnce = false;

/**
 * The probe's verdict, asked again while it may be the reaper's own network that failed it.
 * Once some instance has answered this process, only a refused connection is asked again, for
 * at most half the probe's bound, so a server that is really gone still costs less than one
 * bound. Before that, a refused or unanswered probe is asked again for up to
 * `admissionWaitMs` (the first probes of a pass wait together, not one after another).
 */
export async function probeWithRetries(
  target: ProbeTarget,
  { timeoutMs, admissionWaitMs = 0 }: { timeoutMs: number; admissionWaitMs?: number },
): Promise<Verdict> {
  const retryUntil =
    performance.now() + Math.max(timeoutMs / 2, answeredOnce ? 0 : admissionWaitMs);
  let verdict = await probeOnce(target, timeoutMs);
  while (
    verdict.verdict === "unreachable" &&
    (verdict.unreachable.includes("ECONNREFUSED") ||
      (!answeredOnce && admissionWaitMs > 0 && verdict.unreachable.includes("no answer"))) &&
    performance.now() + REFUSED_RETRY_MS < retryUntil
  ) {
    await new Promise((resolve) => setTimeout(resolve, REFUSED_RETRY_MS));
    const left = Math.ceil(retryUntil - performance.now());
    verdict = await probeOnce(target, Math.min(timeoutMs, left));
  }
  return verdict;
}

async function probeOnce(target: ProbeTarget, timeoutMs: number): Promise<Verdict> {
  const result = await probeInstance(target, timeoutMs);
  if ("status" in result.health || "status" in result.metrics) answeredOnce = true;
  return verdictOf(result);
}

/**
 * Replaces outdated Pods, longest idle first (`candidates` come so ordered), until `max` are
 * replaced or none is left: in batches of what remains of `max`, so a busy or changed
 * instance gives its place to the next one without probing every candidate. A candidate whose
 * Pod was not read with it is read first; one whose Pod turns out current, or not its own
 * running one, is no candidate.
 */
export async function rollOut(
  kube: Kube,
  candidates: readonly ReapAction[],
  max: number,
  options: ReapOptions,
  run: LimitFunction,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let replaced = 0;
  let next = 0;
  while (replaced < max && next < candidates.length) {
    const batch = candidates.slice(next, next + max - replaced);
    next += batch.length;
    const results = await Promise.all(
      batch.map((candidate) =>
        run(async (): Promise<Outcome | undefined> => {
          const unread = candidate.unread;
          if (!unread) return judgeAndAct(kube, candidate, options);
          let pod: V1Pod | undefined;
          try {
            pod = await retryTransient(() => kube.pods.get(unread.pod, { fromCache: true }));
          } catch (error) {
            options.log.error(
              { name: unread.pod, error: (error as Error).message },
              "could not read an outdated instance's Pod",
            );
            return { result: "failed", reason: candidate.reason };
          }
          const action = rolloutOfUnread(candidate, pod);
          return action && judgeAndAct(kube, action, options);
        }),
      ),
    );
    for (const outcome of results) {
      if (!outcome) continue;
      outcomes.push(outcome);
      if (outcome.result === "deleted") replaced++;
    }
  }
  return outcomes;
}

/** Deletes what the plan said (after the test hook), or reports it in a dry run. */
export async function act(
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
