import type { V1Pod } from "@kubernetes/client-node";
import pLimit from "p-limit";
import pRetry from "p-retry";
import { type ClientPod, MANAGED_SELECTOR } from "../shared/clientpod.js";
import type { ExpiryDefaults } from "../shared/expiry.js";
import { deleteInstance } from "../shared/instance-ops.js";
import { type DeleteResult, type Kube, KubeUnavailableError, type Page } from "../shared/kube.js";
import type { Logger } from "../shared/log.js";
import { planReap, type ReapAction } from "./plan.js";

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
  // Pods first: see planReap for why the order matters.
  const pods = await listAll<V1Pod>((page) =>
    kube.listPods({ labelSelector: MANAGED_SELECTOR, ...page }),
  );
  const clientPods = await listAll<ClientPod>(async (page) => {
    const result = await kube.listClientPods({ labelSelector: MANAGED_SELECTOR, ...page });
    for (const name of result.invalid)
      log.warn({ name }, "skipping a ClientPod that does not match the schema");
    return result;
  });
  const actions = planReap(clientPods, pods, options.now(), options.defaults);
  log.debug(
    { clientPods: clientPods.length, pods: pods.length, actions: actions.length },
    "planned",
  );

  await options.beforeDelete?.(actions);

  const limit = pLimit(options.concurrency);
  const outcomes = await Promise.all(
    actions.map((action) =>
      limit(() =>
        dryRun ? Promise.resolve(report(action, "deleted", log, true)) : execute(kube, action, log),
      ),
    ),
  );
  const summary: ReapSummary = {
    checked: clientPods.length,
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
          : kube.deletePod(action.name, { uid: action.uid }),
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

function report(action: ReapAction, outcome: Outcome, log: Logger, dryRun: boolean): Outcome {
  log.info({ ...fields(action), dryRun, result: outcome }, "reap");
  return outcome;
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

async function listAll<T>(
  list: (page: { limit: number; continue?: string }) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const page = await list({ limit: PAGE_SIZE, continue: token });
    items.push(...page.items);
    token = page.continue;
  } while (token);
  return items;
}
