import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { type ClientPod, LABEL_CLIENT } from "../shared/instance/clientpod.js";
import { type ExpiryDefaults, expiryOf } from "../shared/instance/expiry.js";
import { type InstanceParts, partsOf } from "../shared/instance/parts.js";
import { instancePortOf } from "../shared/instance/pod-spec.js";
import { hasPodEnded, ownerNameOf, ownerUidOf } from "../shared/instance/pod-status.js";
import { lastUsedOf } from "../shared/instance/workspace.js";
import { isPoolMember } from "../shared/pool/member.js";
import type { ReapReason } from "../shared/reaper-stats.js";
import type { ProbeTarget } from "./probe.js";

// What goes and why: pure functions of what the reaper read, the time and the fleet's
// timeouts. A pass reads the fleet as batches of ClientPods and the Pods of the same names
// (join.ts), and plans each batch on its own: nothing here needs the whole fleet.

/** One deletion the reaper decided on, with what it needs to delete exactly what it judged. */
export interface ReapAction {
  /**
   * A ClientPod (the whole instance), a lone Pod (an orphan, or an outdated instance's Pod,
   * which the next request starts again from the current template) or a workspace claim.
   */
  kind: "clientpod" | "pod" | "workspace";
  name: string;
  clientId: string | undefined;
  reason: ReapReason;
  /** Seconds since the last activity (or creation), or a workspace's last use. */
  idleSeconds: number | undefined;
  /**
   * For a ClientPod whose Pod or workspace claim is named otherwise (made from a pool member,
   * or over a kept workspace): their names, deleted and stamped instead of its own.
   */
  parts?: InstanceParts | undefined;
  /** Delete preconditions from the reaper's read: anything touched since is left alone. */
  uid: string;
  resourceVersion: string | undefined;
  /**
   * Where the instance's gptme-server answers, for an idle ClientPod whose own Pod runs
   * with an IP; the probe connects nowhere else.
   */
  target?: ProbeTarget | undefined;
  /**
   * The instance's Pod when it was not read with the instance: one adopted from the warm pool
   * keeps its member's name and comes elsewhere in the Pod list. It is read by name when the
   * action needs it (a probe's target; an outdated Pod's uid and resourceVersion, which are
   * unset until then) and counts only while the instance's ClientPod (`ownerUid`) owns it
   * and, for a rollout, while it runs another revision than `revision`.
   */
  unread?: { pod: string; ownerUid: string; revision?: string } | undefined;
  /** For an idle ClientPod: what its expiry becomes if the reaper records activity. */
  timeouts?: { idleTimeoutMs: number; lifetimeEndsAt: Date } | undefined;
}

/** Pods by their instance's name (their owner's: a claimed pool member's Pod has its own). */
export function podsByName(pods: readonly V1Pod[]): ReadonlyMap<string, V1Pod> {
  return new Map(pods.map((pod) => [ownerNameOf(pod) ?? pod.metadata?.name ?? "", pod]));
}

/**
 * The ClientPods that go: idle longer than their idle timeout, alive longer than their
 * maximum lifetime, or with a Pod that ended (per-instance overrides win; exactly at a
 * timeout is not past it). `pods` holds the Pods read with them, by instance name (podsByName):
 * an instance whose Pod is named otherwise and not among them is marked `unread`.
 */
export function planClientPods(
  clientPods: readonly ClientPod[],
  pods: ReadonlyMap<string, V1Pod>,
  now: Date,
  defaults: ExpiryDefaults,
): ReapAction[] {
  const actions: ReapAction[] = [];
  for (const cp of clientPods) {
    const { name, uid, resourceVersion, creationTimestamp, deletionTimestamp } = cp.metadata;
    // Pool members have no client to be idle for: the pool's own pass judges them.
    if (deletionTimestamp || isPoolMember(cp)) continue;
    const lastActivity = cp.status?.lastActivity;
    const expiry = expiryOf(
      {
        createdAt: creationTimestamp,
        lastActivity,
        idleTimeoutSeconds: cp.spec.idleTimeoutSeconds,
        maxLifetimeSeconds: cp.spec.maxLifetimeSeconds,
      },
      defaults,
    );
    const pod = pods.get(name);
    const reason: ReapReason | undefined =
      now > expiry.lifetimeEndsAt
        ? "max-lifetime"
        : now > expiry.idleAt
          ? "idle"
          : pod && ownerUidOf(pod) === uid && hasPodEnded(pod)
            ? "pod-ended"
            : undefined;
    if (!reason) continue;
    const since = lastActivity ?? creationTimestamp;
    const parts = partsOf(cp);
    const unread = reason === "idle" && !pod && parts.pod !== name;
    actions.push({
      kind: "clientpod",
      name,
      clientId: cp.spec.clientId,
      reason,
      idleSeconds: Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000)),
      parts: parts.pod === name && parts.workspace === name ? undefined : parts,
      uid,
      resourceVersion,
      target: reason === "idle" ? targetOf(pod, uid) : undefined,
      unread: unread ? { pod: parts.pod, ownerUid: uid } : undefined,
      timeouts:
        reason === "idle"
          ? {
              idleTimeoutMs: expiry.idleAt.getTime() - since.getTime(),
              lifetimeEndsAt: expiry.lifetimeEndsAt,
            }
          : undefined,
    });
  }
  return actions;
}

/** The instance's own running Pod's IP and `http` port: the only address a probe may use. */
export function targetOf(pod: V1Pod | undefined, ownerUid: string): ProbeTarget | undefined {
  const host = pod?.status?.podIP;
  if (!pod || !host || ownerUidOf(pod) !== ownerUid || pod.metadata?.deletionTimestamp) {
    return undefined;
  }
  if (hasPodEnded(pod)) return undefined;
  return { host, port: instancePortOf(pod) };
}

/**
 * The names of the workspace claims a batch shows in use: each instance's own name and the
 * claim it uses (ClientPods, deleted this pass or not: their claims stay), and every claim a
 * Pod not yet gone mounts.
 */
export function claimsInUse(clientPods: readonly ClientPod[], pods: readonly V1Pod[]): string[] {
  const names: string[] = [];
  for (const cp of clientPods) {
    const parts = partsOf(cp);
    names.push(cp.metadata.name, parts.pod, parts.workspace);
  }
  for (const pod of pods) {
    for (const volume of pod.spec?.volumes ?? []) {
      const claim = volume.persistentVolumeClaim?.claimName;
      if (claim) names.push(claim);
    }
  }
  return names;
}

/**
 * Workspace claims nobody has used for `retentionMs`: not in use (`inUse` says so for every
 * claim an instance or a Pod uses: claimsInUse over the whole pass; a claim it cannot rule
 * out stays), and its last recorded use older than the retention. Exactly at the retention is
 * not past it.
 */
export function planWorkspaces(
  claims: readonly V1PersistentVolumeClaim[],
  inUse: { mightHave(name: string): boolean },
  now: Date,
  retentionMs: number,
): ReapAction[] {
  const actions: ReapAction[] = [];
  for (const claim of claims) {
    const { name, uid, resourceVersion, deletionTimestamp } = claim.metadata ?? {};
    if (!name || !uid || deletionTimestamp) continue;
    const lastUsed = lastUsedOf(claim);
    if (!lastUsed || now.getTime() - lastUsed.getTime() <= retentionMs) continue;
    if (inUse.mightHave(name)) continue;
    actions.push({
      kind: "workspace",
      name,
      clientId: claim.metadata?.labels?.[LABEL_CLIENT],
      reason: "workspace-retention",
      idleSeconds: Math.floor((now.getTime() - lastUsed.getTime()) / 1000),
      uid,
      resourceVersion,
    });
  }
  return actions;
}
