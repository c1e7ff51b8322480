import type { V1Pod } from "@kubernetes/client-node";
import pLimit from "p-limit";
import pRetry from "p-retry";
import { HTTP_PORT_NAME } from "../handler/pod-spec.js";
import { LABEL_CLIENT, MANAGED_SELECTOR } from "../shared/clientpod.js";
import type { ExpiryDefaults } from "../shared/expiry.js";
import { deleteInstance } from "../shared/instance-ops.js";
import { type DeleteResult, type Kube, KubeUnavailableError } from "../shared/kube.js";
import type { Logger } from "../shared/log.js";
import { planClientPods, planOrphans, podsByName, type ReapAction } from "./plan.js";
import { probeInstance } from "./probe.js";
import { detailOf, type Verdict, verdictOf } from "./verdict.js";

/** Objects per list call: the fleet is read in pages, never in one response. */
export const PAGE_SIZE = 500;
/** Retries of a delete that failed for a transient reason (unreachable, overloaded). */
const DELETE_RETRIES = 3;

export interface ReapOptions {
  defaults: ExpiryDefaults;
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
  checked: number;
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
}

type Result = "deleted" | "skipped" | "failed";
interface Outcome {
  result: Result;
  verdict?: Verdict["verdict"];
}

/** One pass over the fleet: read, plan, delete what expired, report. */
export async function reap(kube: Kube, options: ReapOptions): Promise<ReapSummary> {
  const started = performance.now();
  const { log, dryRun } = options;
  // Pods first: see planReap for why the order matters. ClientPods are planned page by page
  // and dropped: what stays in memory is a uid per instance and the actions, not the fleet.
  const now = options.now();
  const pods = await listPods(kube);
  const podIndex = podsByName(pods);
  const liveOwners = new Set<string>();
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
    for (const cp of page.items) liveOwners.add(cp.metadata.uid);
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
  const count = (match: (o: Outcome) => boolean) => outcomes.filter(match).length;
  const summary: ReapSummary = {
    checked,
    deleted: count((o) => o.result === "deleted"),
    skipped: count((o) => o.result === "skipped"),
    busy: count((o) => o.verdict === "busy"),
    unreachable: count((o) => o.verdict === "unreachable" && o.result === "deleted"),
    failed: count((o) => o.result === "failed"),
    dryRun,
    durationMs: Math.round(performance.now() - started),
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
  const { log, dryRun, probe } = options;
  let verdict: Verdict | undefined;
  if (probe && action.kind === "clientpod" && action.reason === "idle") {
    verdict = action.target
      ? verdictOf(await probeInstance(action.target, probe.timeoutMs))
      : { verdict: "unreachable", unreachable: "no running Pod with an IP" };
    if (verdict.verdict === "busy") return keepBusy(kube, action, verdict, options);
  }
  const signal = verdict && signalFields(verdict);
  await options.beforeWrite?.(action);
  const result = dryRun ? planned(action, log, signal) : await execute(kube, action, log, signal);
  return { result, verdict: verdict?.verdict };
}

/**
 * Keeps a busy instance and writes its activity (with the verdict), so the next pass and
 * every `expiresAt` count it as active. Written only if the ClientPod is unchanged since the
 * reaper read it: a client that touched it in between wrote fresher activity itself.
 */
async function keepBusy(
  kube: Kube,
  action: ReapAction,
  verdict: Verdict,
  { log, dryRun, now, beforeWrite }: ReapOptions,
): Promise<Outcome> {
  const fields = { ...actionFields(action), reason: "busy", ...signalFields(verdict), dryRun };
  if (dryRun || action.resourceVersion === undefined) {
    log.info({ ...fields, result: "skipped" }, "reap");
    return { result: "skipped", verdict: "busy" };
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
    return { result: "skipped", verdict: "busy" };
  } catch (error) {
    // Kept all the same; the failure is reported so a missing permission does not go unseen.
    log.error({ ...fields, result: "failed", error: (error as Error).message }, "reap");
    return { result: "failed", verdict: "busy" };
  }
}

/** The probe's signal as log fields: what kept or doomed the instance. */
function signalFields(verdict: Verdict): Record<string, number | string | undefined> {
  return verdict.verdict === "unreachable"
    ? { unreachable: verdict.unreachable }
    : { generating: verdict.generating, sseConnections: verdict.sseConnections };
}

async function execute(
  kube: Kube,
  action: ReapAction,
  log: Logger,
  signal: Record<string, unknown> | undefined,
): Promise<Result> {
  let result: DeleteResult;
  try {
    result = await pRetry(
      () =>
        action.kind === "clientpod"
          ? deleteInstance(kube, action.name, {
              uid: action.uid,
              resourceVersion: action.resourceVersion,
            })
          : kube.pods.delete(action.name, { uid: action.uid }),
      {
        retries: DELETE_RETRIES,
        minTimeout: 200,
        shouldRetry: ({ error }) => error instanceof KubeUnavailableError,
      },
    );
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
  // A conflict means the instance was touched after we read it; absent, that someone else
  // deleted it first. Neither is ours to count as deleted, and neither is a failure.
  const outcome: Result = result === "deleted" ? "deleted" : "skipped";
  const detail =
    result === "conflict" ? "changed since read" : result === "absent" ? "already gone" : undefined;
  log.info({ ...actionFields(action), ...signal, dryRun: false, result: outcome, detail }, "reap");
  return outcome;
}

/** A dry run reports what a real pass would delete, and touches nothing. */
function planned(
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

/** Every fleet Pod, page by page, each cut down to the few fields the plan reads. */
async function listPods(kube: Kube): Promise<V1Pod[]> {
  const pods: V1Pod[] = [];
  let token: string | undefined;
  do {
    const page = await kube.pods.list({
      labelSelector: MANAGED_SELECTOR,
      limit: PAGE_SIZE,
      continue: token,
    });
    pods.push(...page.items.map(slimPod));
    token = page.continue;
  } while (token);
  return pods;
}

function slimPod(pod: V1Pod): V1Pod {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller);
  const client = pod.metadata?.labels?.[LABEL_CLIENT];
  // The probe's target: the pod IP and the one container port named `http`.
  const serving = pod.spec?.containers.find((c) => c.ports?.some((p) => p.name === HTTP_PORT_NAME));
  const http = serving?.ports?.find((p) => p.name === HTTP_PORT_NAME);
  return {
    metadata: {
      name: pod.metadata?.name,
      uid: pod.metadata?.uid,
      deletionTimestamp: pod.metadata?.deletionTimestamp,
      labels: client ? { [LABEL_CLIENT]: client } : undefined,
      ownerReferences: owner ? [owner] : undefined,
    },
    spec: {
      containers: serving && http ? [{ name: serving.name, ports: [http] }] : [],
    },
    status: { phase: pod.status?.phase, podIP: pod.status?.podIP },
  };
}
