import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { hasPodEnded, ownerUidOf } from "../shared/instance/pod-status.js";
import { isServing } from "../shared/instance/serving.js";
import { ANNOTATION_POOL_TEMPLATE, isPoolMember } from "../shared/pool/member.js";

/**
 * Why a member ClientPod goes: `claimed`, a claim adopted its Pod (what is left is its
 * record); `broken`, its Pod ended, is going, or never came; `outdated`, its Pod was made from
 * an older PodTemplate; `surplus`, more members than POOL_SIZE.
 */
export type PoolReason = "claimed" | "broken" | "outdated" | "surplus";

export interface PoolRemoval {
  name: string;
  uid: string;
  reason: PoolReason;
  /** For `claimed`: the adopted Pod (its labels name the instance's client). */
  adoptedBy?: V1Pod;
}

export interface PoolPlan {
  remove: PoolRemoval[];
  /** Members to start so that POOL_SIZE healthy ones remain. */
  start: number;
  /** Healthy members kept. */
  members: number;
  /** Kept members nobody has seen answering yet: the pass asks them (claims prefer those seen). */
  unseen: V1Pod[];
}

/** A member whose Pod has not appeared this long after its ClientPod is a failed start. */
export const MEMBER_START_GRACE_MS = 120_000;

/**
 * What the pool needs, from the member ClientPods and the fleet's Pods as read: a pure
 * function of (objects, now, POOL_SIZE, the template's version).
 */
export function planPool(
  members: readonly ClientPod[],
  pods: readonly V1Pod[],
  now: Date,
  poolSize: number,
  templateVersion: string | undefined,
): PoolPlan {
  const podByName = new Map(pods.map((p) => [p.metadata?.name ?? "", p]));
  const remove: PoolRemoval[] = [];
  const healthy: { cp: ClientPod; pod: V1Pod }[] = [];
  let starting = 0;
  for (const cp of members) {
    const { name, uid, creationTimestamp, deletionTimestamp } = cp.metadata;
    if (deletionTimestamp) continue;
    const pod = podByName.get(name);
    const owner = pod && ownerUidOf(pod);
    if (pod && owner && owner !== uid && !isPoolMember(pod)) {
      remove.push({ name, uid, reason: "claimed", adoptedBy: pod });
    } else if (!pod || owner !== uid) {
      if (now.getTime() - creationTimestamp.getTime() > MEMBER_START_GRACE_MS)
        remove.push({ name, uid, reason: "broken" });
      else starting++;
    } else if (hasPodEnded(pod) || pod.metadata?.deletionTimestamp) {
      remove.push({ name, uid, reason: "broken" });
    } else if (
      templateVersion !== undefined &&
      pod.metadata?.annotations?.[ANNOTATION_POOL_TEMPLATE] !== templateVersion
    ) {
      remove.push({ name, uid, reason: "outdated" });
    } else {
      healthy.push({ cp, pod });
    }
  }
  // Keep the best: serving first, then the oldest (longest warm).
  healthy.sort(
    (a, b) =>
      Number(isServing(b.pod)) - Number(isServing(a.pod)) ||
      a.cp.metadata.creationTimestamp.getTime() - b.cp.metadata.creationTimestamp.getTime(),
  );
  for (const { cp } of healthy.slice(poolSize)) {
    remove.push({ name: cp.metadata.name, uid: cp.metadata.uid, reason: "surplus" });
  }
  const kept = healthy.slice(0, poolSize);
  return {
    remove,
    start: Math.max(0, poolSize - kept.length - starting),
    members: kept.length,
    unseen: kept.filter(({ pod }) => !isServing(pod)).map(({ pod }) => pod),
  };
}
