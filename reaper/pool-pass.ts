import type { V1Pod } from "@kubernetes/client-node";
import pLimit, { type LimitFunction } from "p-limit";
import {
  awaitMemberServing,
  indexMember,
  type MemberSettings,
  pruneIndex,
  startMember,
  unindexMember,
} from "../shared/actions/pool-members.js";
import type { TokenKeyring } from "../shared/actions/token-keyring.js";
import type { Plan, Plans } from "../shared/config/plans.js";
import {
  ANNOTATION_TOKEN_KEY,
  type ClientPod,
  LABEL_CLIENT,
  LABEL_INSTANCE,
} from "../shared/instance/clientpod.js";
import { ownerUidOf } from "../shared/instance/pod-status.js";
import { answersHealth, healthUrlOf, servingAnnotations } from "../shared/instance/serving.js";
import { ANNOTATION_CREATED_FOR } from "../shared/instance/workspace.js";
import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import { LABEL_POOL, memberPlanOf, POOL_SELECTOR } from "../shared/pool/member.js";
import { type PoolRemoval, planPool } from "./pool-plan.js";
import { clientPodPages, podPages, readAll, slimPod } from "./read.js";
import { retryTransient } from "./retry.js";

export interface PoolOptions {
  /** Each plan keeps its own pool of `poolSize` members, made from its template. */
  plans: Plans;
  /** What every member gets besides its plan's: resources, the workspaces' class. */
  member: Omit<MemberSettings, "plan">;
  keyring: TokenKeyring;
  concurrency: number;
  dryRun: boolean;
  now: () => Date;
  log: Logger;
  /**
   * How long the pass waits for the members it starts to answer, recording each that does
   * (a claim of it answers `ready` at once); 0: not at all (the next pass asks them).
   */
  servingWaitMs?: number;
}

export interface PlanPoolSummary {
  /** Healthy members after the pass (kept plus started). */
  members: number;
  started: number;
  removed: number;
  /** Members recorded as answering by this pass. */
  seen: number;
  failed: number;
}

/** The pass over every plan's pool: the plans' counts summed, and the index's pruning. */
export interface PoolSummary extends PlanPoolSummary {
  /** Index entries dropped for members that are gone. */
  unindexed: number;
}

/** How long a member has to answer the pass's health check. */
const SEEN_TIMEOUT_MS = 1_000;

/**
 * Tops each plan's warm pool up to its poolSize, from its template, and removes the members
 * that should go: what is left of claimed ones (after finishing their claim: the workspace
 * labelled as the client's), broken, outdated and surplus ones (their never-used workspace
 * claims with them), and those of plans no longer offered. One JSON line per action, a
 * `pool` line per plan and a summary line.
 */
export async function tendPool(kube: Kube, options: PoolOptions): Promise<PoolSummary> {
  const { log } = options;
  // By the pool's label, never every Pod of the fleet; Pods first (a member's ClientPod is
  // made before its Pod: see reap.ts).
  const pods = await readAll(podPages(kube, { labelSelector: POOL_SELECTOR, log }));
  const members = await readAll(clientPodPages(kube, { labelSelector: POOL_SELECTOR, log }));
  const byPlan = new Map<string, ClientPod[]>();
  for (const member of members) {
    const plan = memberPlanOf(member);
    byPlan.set(plan, [...(byPlan.get(plan) ?? []), member]);
  }
  const total: PoolSummary = {
    members: 0,
    started: 0,
    removed: 0,
    seen: 0,
    failed: 0,
    unindexed: 0,
  };
  const plans: (Plan | string)[] = [
    ...options.plans.all,
    // Members of plans no longer offered: each one goes (claimed ones once finished).
    ...[...byPlan.keys()].filter((name) => !options.plans.get(name)),
  ];
  for (const plan of plans) {
    const name = typeof plan === "string" ? plan : plan.name;
    const summary = await tendPlanPool(kube, options, plan, byPlan.get(name) ?? [], pods);
    for (const key of Object.keys(summary) as (keyof PlanPoolSummary)[]) total[key] += summary[key];
  }
  if (!options.dryRun) {
    // A hint kept clean, never a reason to fail the pass's other work.
    total.unindexed = await pruneIndex(kube, members, options.log).catch((error: Error) => {
      options.log.error({ error: error.message }, "pool: the index could not be pruned");
      total.failed++;
      return 0;
    });
  }
  options.log.info(
    { ...total, poolSize: options.plans.poolSize, dryRun: options.dryRun },
    "pool: summary",
  );
  return total;
}

/** One plan's pool (a plan no longer offered: its name, and no members kept). */
async function tendPlanPool(
  kube: Kube,
  options: PoolOptions,
  offered: Plan | string,
  members: readonly ClientPod[],
  pods: readonly V1Pod[],
): Promise<PlanPoolSummary> {
  const { log, dryRun } = options;
  const planOf = typeof offered === "string" ? undefined : offered;
  const poolSize = planOf?.poolSize ?? 0;
  const template = planOf && (await kube.podTemplates.get(planOf.template));
  const limit = pLimit(options.concurrency);
  const plan = planPool(
    members,
    [...pods, ...(await podsClaimedOrGone(kube, members, pods, limit))],
    options.now(),
    poolSize,
    template?.metadata?.resourceVersion,
  );
  const planName = typeof offered === "string" ? offered : offered.name;
  let failed = 0;
  const removed = await Promise.all(
    plan.remove.map((removal) =>
      limit(async () => {
        log.info(
          { name: removal.name, plan: planName, reason: removal.reason, dryRun },
          "pool: remove member",
        );
        if (dryRun) return true;
        try {
          return await remove(kube, removal);
        } catch (error) {
          failed++;
          log.error({ name: removal.name, error: (error as Error).message }, "pool: remove failed");
          return false;
        }
      }),
    ),
  );
  // Members not yet seen answering: ask each once and record it, so claims hand them out ready.
  let seen = 0;
  if (!dryRun) {
    await Promise.all(
      plan.unseen.map((pod) =>
        limit(async () => {
          const url = healthUrlOf(pod);
          if (!url || !(await answersHealth(url, SEEN_TIMEOUT_MS))) return;
          const name = pod.metadata?.name ?? "";
          const recorded = await kube.pods
            .patchIfSame(name, pod.metadata?.uid ?? "", {
              metadata: { annotations: servingAnnotations(options.now()) },
            })
            .catch(() => undefined);
          if (!recorded) return;
          seen++;
          // From the member's ClientPod, kept whole (the pass keeps only part of each Pod).
          const member = members.find((cp) => cp.metadata.uid === ownerUidOf(pod));
          if (!member) return;
          const entry = {
            uid: member.metadata.uid,
            tokenKeyId: member.metadata.annotations?.[ANNOTATION_TOKEN_KEY] ?? "",
            plan: planName,
            serving: true,
          };
          await indexMember(kube, name, entry).catch(() => undefined);
        }),
      ),
    );
  }
  let started = 0;
  if (planOf && template && !dryRun && plan.start > 0) {
    const keys = await options.keyring.keys();
    await Promise.all(
      Array.from({ length: plan.start }, () =>
        limit(async () => {
          const pod = await startMember(
            kube,
            template,
            keys.current,
            { ...options.member, plan: planOf },
            options.now(),
          ).catch((error: unknown) => {
            log.error({ error: (error as Error).message }, "pool: start failed");
            return undefined;
          });
          if (pod) {
            started++;
            log.info({ name: pod.metadata?.name, plan: planName }, "pool: member started");
            const waitMs = options.servingWaitMs ?? 0;
            const deadline = Date.now() + waitMs;
            const served =
              waitMs > 0 &&
              (await awaitMemberServing(
                kube,
                pod,
                keys.current,
                planName,
                deadline,
                options.now,
              ).catch((error: unknown) => {
                const { message } = error as Error;
                log.warn({ name: pod.metadata?.name, error: message }, "pool: not recorded");
                return false;
              }));
            if (served) seen++;
          } else failed++;
        }),
      ),
    );
  } else if (planOf && !template && plan.start > 0) {
    log.error(
      { plan: planName, podTemplate: planOf.template },
      "pool: the plan's PodTemplate is missing",
    );
    failed++;
  }
  const summary: PlanPoolSummary = {
    members: plan.members + started,
    started,
    removed: removed.filter(Boolean).length,
    seen,
    failed,
  };
  log.info({ ...summary, plan: planName, poolSize, dryRun }, "pool");
  return summary;
}

/**
 * The Pods of members that no longer carry the pool's label, read by name: a claim relabels
 * the Pod it adopts (the member's record is then left to remove), and a member whose Pod is
 * not there yet, or gone, is judged by its age. As few as the pool has members.
 */
async function podsClaimedOrGone(
  kube: Kube,
  members: readonly ClientPod[],
  labelled: readonly V1Pod[],
  limit: LimitFunction,
): Promise<V1Pod[]> {
  const names = new Set(labelled.map((pod) => pod.metadata?.name));
  const read = await Promise.all(
    members
      .filter((cp) => !cp.metadata.deletionTimestamp && !names.has(cp.metadata.name))
      .map((cp) =>
        limit(() => retryTransient(() => kube.pods.get(cp.metadata.name, { fromCache: true }))),
      ),
  );
  return read.filter((pod) => pod !== undefined).map(slimPod);
}

async function remove(kube: Kube, removal: PoolRemoval): Promise<boolean> {
  if (removal.reason === "claimed") {
    // Finish the claim if its replica did not: the workspace is the client's now.
    const labels = removal.adoptedBy?.metadata?.labels ?? {};
    const owner = removal.adoptedBy?.metadata?.ownerReferences?.find((r) => r.controller);
    if (labels[LABEL_CLIENT] && labels[LABEL_INSTANCE] && owner) {
      await kube.workspaces.patch(removal.name, {
        metadata: {
          labels: {
            [LABEL_CLIENT]: labels[LABEL_CLIENT],
            [LABEL_INSTANCE]: labels[LABEL_INSTANCE],
            [LABEL_POOL]: null,
          },
          annotations: { [ANNOTATION_CREATED_FOR]: owner.uid },
        },
      });
    }
    const deleted =
      (await kube.clientPods.delete(removal.name, { uid: removal.uid })) === "deleted";
    if (deleted) await unindexMember(kube, removal.name);
    return deleted;
  }
  // Its Pod and Secret follow it (garbage collection); its workspace was never anyone's.
  const deleted = (await kube.clientPods.delete(removal.name, { uid: removal.uid })) === "deleted";
  if (deleted)
    await Promise.all([kube.workspaces.delete(removal.name), unindexMember(kube, removal.name)]);
  return deleted;
}
