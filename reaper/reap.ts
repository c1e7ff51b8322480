import type { V1Pod } from "@kubernetes/client-node";
import pLimit from "p-limit";
import pRetry from "p-retry";
import { LABEL_CLIENT, MANAGED_SELECTOR } from "../shared/clientpod.js";
import type { ExpiryDefaults } from "../shared/expiry.js";
import { deleteInstance } from "../shared/instance-ops.js";
import { type DeleteResult, type Kube, KubeUnavailableError } from "../shared/kube.js";
import type { Logger } from "../shared/log.js";
import { planClientPods, planOrphans, podsByName, type ReapAction } from "./plan.js";

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
  /** Runs between planning and deleting; tests use it to make races deterministic. */
  beforeDelete?: (actions: readonly ReapAction[]) => Promise<void>;
}

export interface ReapSummary {
  checked: number;
  deleted: number;
  skipped: number;
  failed: number;
  dryRun: boolean;
  durationMs: number;
}

type Outcome = "deleted" | "skipped" | "failed";

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

  await options.beforeDelete?.(actions);

  const limit = pLimit(options.concurrency);
  const outcomes = await Promise.all(
    actions.map((action) =>
      limit(() => (dryRun ? planned(action, log) : execute(kube, action, log))),
    ),
  );
  const summary: ReapSummary = {
    checked,
    deleted: outcomes.filter((o) => o === "deleted").length,
    skipped: outcomes.filter((o) => o === "skipped").length,
    failed: outcomes.filter((o) => o === "failed").length,
    dryRun,
    durationMs: Math.round(performance.now() - started),
  };
  log.info(summary, "summary");
  return summary;
}

async function execute(kube: Kube, action: ReapAction, log: Logger): Promise<Outcome> {
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
      { ...fields(action), dryRun: false, result: "failed", error: (error as Error).message },
      "reap",
    );
    return "failed";
  }
  // A conflict means the instance was touched after we read it; absent, that someone else
  // deleted it first. Neither is ours to count as deleted, and neither is a failure.
  const outcome: Outcome = result === "deleted" ? "deleted" : "skipped";
  const detail =
    result === "conflict" ? "changed since read" : result === "absent" ? "already gone" : undefined;
  log.info({ ...fields(action), dryRun: false, result: outcome, detail }, "reap");
  return outcome;
}

/** A dry run reports what a real pass would delete, and touches nothing. */
async function planned(action: ReapAction, log: Logger): Promise<Outcome> {
  log.info({ ...fields(action), dryRun: true, result: "deleted" }, "reap");
  return "deleted";
}

function fields(action: ReapAction) {
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
  return {
    metadata: {
      name: pod.metadata?.name,
      uid: pod.metadata?.uid,
      deletionTimestamp: pod.metadata?.deletionTimestamp,
      labels: client ? { [LABEL_CLIENT]: client } : undefined,
      ownerReferences: owner ? [owner] : undefined,
    },
    status: { phase: pod.status?.phase },
  };
}
