import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { type ClientPod, LABEL_CLIENT } from "../shared/instance/clientpod.js";
import { type ExpiryDefaults, expiryOf } from "../shared/instance/expiry.js";
import { type InstanceParts, partsOf } from "../shared/instance/parts.js";
import { instancePortOf } from "../shared/instance/pod-spec.js";
import { hasPodEnded, ownerNameOf, ownerUidOf } from "../shared/instance/pod-status.js";
import { podRevisionOf } from "../shared/instance/revision.js";
import { lastUsedOf } from "../shared/instance/workspace.js";
import { isPoolMember } from "../shared/pool/member.js";
import type { ReapReason } from "../shared/reaper-stats.js";
import type { ProbeTarget } from "./probe.js";

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
  /** For an idle ClientPod: what its expiry becomes if the reaper records activity. */
  timeouts?: { idleTimeoutMs: number; lifetimeEndsAt: Date } | undefined;
}

/**
 * Which objects go, and why: a pure function of what the reaper read, the time and the
 * fleet's timeouts (per-instance overrides win). A ClientPod goes when it has been idle
 * longer than its idle timeout, has lived longer than its maximum lifetime, or its Pod
 * has ended; a fleet Pod goes when no ClientPod owns it. Exactly at a timeout is not past it.
 *
 * `pods` must be read before `clientPods`: the handler creates a ClientPod before its Pod,
 * so every Pod read has its ClientPod in the later read, unless that was really deleted.
 */
export function planReap(
  clientPods: readonly ClientPod[],
  pods: readonly V1Pod[],
  now: Date,
  defaults: ExpiryDefaults,
): ReapAction[] {
  return [
    ...planClientPods(clientPods, podsByName(pods), now, defaults),
    ...planOrphans(pods, new Set(clientPods.map((cp) => cp.metadata.uid))),
  ];
}

/** Pods by their instance's name (their owner's: a claimed pool member's Pod has its own). */
export function podsByName(pods: readonly V1Pod[]): ReadonlyMap<string, V1Pod> {
  return new Map(pods.map((pod) => [ownerNameOf(pod) ?? pod.metadata?.name ?? "", pod]));
}

/** The ClientPods of one page that go (idle, max-lifetime, pod-ended). */
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

/** Fleet Pods that no ClientPod of `liveOwners` (uids) owns. */
export function planOrphans(pods: readonly V1Pod[], liveOwners: ReadonlySet<string>): ReapAction[] {
  const actions: ReapAction[] = [];
  for (const pod of pods) {
    const owner = ownerUidOf(pod);
    const { name, uid } = pod.metadata ?? {};
    if (!name || !uid || pod.metadata?.deletionTimestamp) continue;
    if (owner && liveOwners.has(owner)) continue;
    actions.push({
      kind: "pod",
      name,
      clientId: pod.metadata?.labels?.[LABEL_CLIENT],
      reason: "orphan",
      idleSeconds: undefined,
      uid,
      resourceVersion: undefined,
    });
  }
  return actions;
}

/**
 * Workspace claims nobody has used for `retentionMs`: no instance of that name exists (its
 * ClientPod would use it), no Pod mounts it, and its last recorded use is older than the
 * retention. Exactly at the retention is not past it.
 */
export function planWorkspaces(
  claims: readonly V1PersistentVolumeClaim[],
  mounted: ReadonlySet<string>,
  instances: ReadonlySet<string>,
  now: Date,
  retentionMs: number,
): ReapAction[] {
  const actions: ReapAction[] = [];
  for (const claim of claims) {
    const { name, uid, resourceVersion, deletionTimestamp } = claim.metadata ?? {};
    if (!name || !uid || deletionTimestamp || mounted.has(name) || instances.has(name)) continue;
    const lastUsed = lastUsedOf(claim);
    if (!lastUsed || now.getTime() - lastUsed.getTime() <= retentionMs) continue;
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

/**
 * The Pods to replace because their instance runs an older revision than its template gives
 * now (`current`, by template name; a template that is gone rolls nothing): the instance's
 * own running Pod, idle for at least `idleMs` by its ClientPod's activity, and not among
 * `leaving` (instances this pass deletes anyway). Longest idle first: the least likely to be
 * used while its Pod restarts. The Pod goes only if unchanged since read (resourceVersion):
 * an activity write in between mirrors itself onto the Pod and keeps it.
 */
export function planRollout(
  clientPods: readonly ClientPod[],
  pods: ReadonlyMap<string, V1Pod>,
  now: Date,
  current: ReadonlyMap<string, string | undefined>,
  idleMs: number,
  leaving: ReadonlySet<string>,
  /** The template an instance's Pod is made from now (its plan's); default: the one it records. */
  templateOf: (cp: ClientPod) => string = (cp) => cp.spec.podTemplate,
): ReapAction[] {
  const actions: ReapAction[] = [];
  for (const cp of clientPods) {
    const { name, uid: ownerUid, creationTimestamp, deletionTimestamp } = cp.metadata;
    // Outdated pool members are the pool pass's: it removes them and starts new ones.
    if (deletionTimestamp || leaving.has(name) || isPoolMember(cp)) continue;
    const pod = pods.get(name);
    const revision = current.get(templateOf(cp));
    const podUid = pod?.metadata?.uid;
    if (!pod || !podUid || revision === undefined) continue;
    if (ownerUidOf(pod) !== ownerUid || pod.metadata?.deletionTimestamp || hasPodEnded(pod))
      continue;
    if (podRevisionOf(pod) === revision) continue;
    const since = cp.status?.lastActivity ?? creationTimestamp;
    const idle = now.getTime() - since.getTime();
    if (idle < idleMs) continue;
    actions.push({
      kind: "pod",
      // An instance made from a pool member keeps the member's Pod name.
      name: pod.metadata?.name ?? name,
      clientId: cp.spec.clientId,
      reason: "outdated",
      idleSeconds: Math.floor(idle / 1000),
      uid: podUid,
      resourceVersion: pod.metadata?.resourceVersion,
      target: targetOf(pod, ownerUid),
    });
  }
  return actions;
}
