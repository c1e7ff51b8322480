import { recordWorkspaceUse } from "../shared/actions/instances.js";
import type { DeleteResult, Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import type { ReapOptions } from "./options.js";
import type { ReapAction } from "./plan.js";
import { retryTransient } from "./retry.js";
import { detailOf, type Verdict } from "./verdict.js";

// What the reaper does with each action it decided on: delete exactly what it judged, or
// keep a busy instance and say so, logging one line per action.

/** `deferred`: planned, but not carried out: the pass reached its time limit first. */
export type Result = "deleted" | "skipped" | "failed" | "deferred";
export interface Outcome {
  result: Result;
  verdict?: Verdict["verdict"];
  reason?: ReapAction["reason"];
}

/**
 * Keeps a busy instance and writes its activity (with the verdict), so the next pass and
 * every `expiresAt` count it as active. Written only if the ClientPod is unchanged since the
 * reaper read it: a client that touched it in between wrote fresher activity itself.
 */
export async function keepBusy(
  kube: Kube,
  action: ReapAction,
  verdict: Verdict,
  { log, dryRun, now, beforeWrite }: ReapOptions,
): Promise<Outcome> {
  const fields = { ...actionFields(action), reason: "busy", ...signalFields(verdict), dryRun };
  if (dryRun || action.resourceVersion === undefined) {
    log.info({ ...fields, result: "skipped" }, "reap");
    return { result: "skipped", verdict: "busy", reason: action.reason };
  }
  await beforeWrite?.(action);
  const when = now();
  const at = when.toISOString();
  const timeouts = action.timeouts;
  // The instance's new expiry, for `kubectl get cpod`: idle from now on, within its lifetime.
  const expiresAt =
    timeouts &&
    new Date(
      Math.min(when.getTime() + timeouts.idleTimeoutMs, timeouts.lifetimeEndsAt.getTime()),
    ).toISOString();
  try {
    const written = await kube.clientPods.patchStatusIfUnchanged(
      action.name,
      action.resourceVersion,
      {
        lastActivity: at,
        expiresAt,
        lastReap: { at, verdict: "busy", detail: detailOf(verdict) },
      },
    );
    const detail =
      written === "conflict"
        ? "changed since read"
        : written === "absent"
          ? "already gone"
          : "activity recorded";
    log.info({ ...fields, result: "skipped", detail }, "reap");
    return { result: "skipped", verdict: "busy", reason: action.reason };
  } catch (error) {
    // Kept all the same; the failure is reported so a missing permission does not go unseen.
    log.error({ ...fields, result: "failed", error: (error as Error).message }, "reap");
    return { result: "failed", verdict: "busy", reason: action.reason };
  }
}

/**
 * Leaves an outdated instance's Pod alone when its gptme-server is working, or cannot say
 * it is not: a later pass replaces it once it answers idle. Nothing is written.
 */
export function leaveBusy(
  action: ReapAction,
  verdict: Verdict,
  { log, dryRun }: ReapOptions,
): Outcome {
  const detail = verdict.verdict === "busy" ? "busy" : "cannot tell whether it is working";
  log.info(
    { ...actionFields(action), ...signalFields(verdict), dryRun, result: "skipped", detail },
    "reap",
  );
  return { result: "skipped", verdict: verdict.verdict, reason: action.reason };
}
/** The probe's signal as log fields: what kept or doomed the instance. */
export function signalFields(verdict: Verdict): Record<string, number | string | undefined> {
  return verdict.verdict === "unreachable"
    ? { unreachable: verdict.unreachable }
    : { generating: verdict.generating, sseConnections: verdict.sseConnections };
}

export async function execute(
  kube: Kube,
  action: ReapAction,
  { log, now }: ReapOptions,
  signal: Record<string, unknown> | undefined,
): Promise<Result> {
  let result: DeleteResult;
  try {
    result = await retryTransient(() => deleteOf(kube, action));
  } catch (error) {
    log.error(
      {
        ...actionFields(action),
        ...signal,
        dryRun: false,
        result: "failed",
        error: (error as Error).message,
      },
      "reap",
    );
    return "failed";
  }
  // A conflict means the object was touched after we read it; absent, that someone else
  // deleted it first. Neither is ours to count as deleted, and neither is a failure.
  const outcome: Result = result === "deleted" ? "deleted" : "skipped";
  const detail =
    result === "conflict" ? "changed since read" : result === "absent" ? "already gone" : undefined;
  log.info({ ...actionFields(action), ...signal, dryRun: false, result: outcome, detail }, "reap");
  if (result === "deleted" && action.kind === "clientpod") {
    // Both follow the ClientPod's delete and neither needs the other: at once.
    await Promise.all([deletePodOf(kube, action, log), stampWorkspace(kube, action, now(), log)]);
  }
  return outcome;
}

/**
 * A deleted instance's Pod, deleted at once rather than when the garbage collector gets to it
 * (as deleteInstance does). A failure is reported, not counted: the instance is gone, and the
 * garbage collector deletes the Pod of a deleted ClientPod anyway.
 */
async function deletePodOf(kube: Kube, action: ReapAction, log: Logger) {
  const name = action.parts?.pod ?? action.name;
  try {
    await retryTransient(() => kube.pods.delete(name));
  } catch (error) {
    log.warn(
      { name: action.name, pod: name, error: (error as Error).message },
      "could not delete the instance's Pod (the garbage collector will)",
    );
  }
}

/** The delete of exactly the object judged: preconditions from the reaper's read. */
function deleteOf(kube: Kube, action: ReapAction): Promise<DeleteResult> {
  const read = { uid: action.uid, resourceVersion: action.resourceVersion };
  switch (action.kind) {
    case "clientpod":
      // Its Pod next, once this holds (execute), beside the workspace's stamp.
      return kube.clientPods.delete(action.name, read);
    case "workspace":
      return kube.workspaces.delete(action.name, read);
    case "pod":
      // An orphan by uid; an outdated Pod also by resourceVersion (unused since read).
      return kube.pods.delete(action.name, read);
  }
}

/**
 * A reaped instance's workspace stays: its retention counts from now. A failed write is
 * reported, not counted as a failed delete; the retention then counts from the instance's
 * creation (at most MAX_LIFETIME earlier).
 */
async function stampWorkspace(kube: Kube, action: ReapAction, now: Date, log: Logger) {
  try {
    await recordWorkspaceUse(kube, action.parts?.workspace ?? action.name, now);
  } catch (error) {
    log.warn(
      { name: action.name, error: (error as Error).message },
      "could not record the workspace's last use",
    );
  }
}

/** A dry run reports what a real pass would delete, and touches nothing. */
export function planned(
  action: ReapAction,
  log: Logger,
  signal: Record<string, unknown> | undefined,
): Result {
  log.info({ ...actionFields(action), ...signal, dryRun: true, result: "deleted" }, "reap");
  return "deleted";
}

function actionFields(action: ReapAction) {
  return {
    kind: action.kind,
    name: action.name,
    clientId: action.clientId,
    reason: action.reason,
    idleSeconds: action.idleSeconds,
  };
}
