import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { partsOf } from "../shared/instance/parts.js";
import { hasPodEnded, ownerUidOf } from "../shared/instance/pod-status.js";
import { podRevisionOf } from "../shared/instance/revision.js";
import { isPoolMember } from "../shared/pool/member.js";
import { type ReapAction, targetOf } from "./plan.js";

/**
 * The Pods to replace because their instance runs an older revision than its template gives
 * now (`current`, by template name; a template that is gone rolls nothing): the instance's
 * own running Pod, idle for at least `idleMs` by its ClientPod's activity, and not among
 * `leaving` (instances this pass deletes anyway). The Pod goes only if unchanged since read
 * (resourceVersion): an activity write in between mirrors itself onto the Pod and keeps it.
 *
 * An instance whose Pod is named otherwise and was not read with it is a candidate when its
 * ClientPod records another revision than the current one; its Pod is read before it goes
 * (`unread`).
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
    const revision = current.get(templateOf(cp));
    if (revision === undefined) continue;
    const since = cp.status?.lastActivity ?? creationTimestamp;
    const idle = now.getTime() - since.getTime();
    if (idle < idleMs) continue;
    const candidate = {
      kind: "pod" as const,
      clientId: cp.spec.clientId,
      reason: "outdated" as const,
      idleSeconds: Math.floor(idle / 1000),
    };
    const pod = pods.get(name);
    const podName = partsOf(cp).pod;
    if (!pod && podName !== name) {
      if (cp.status?.revision === revision) continue;
      actions.push({
        ...candidate,
        name: podName,
        uid: "",
        resourceVersion: undefined,
        unread: { pod: podName, ownerUid, revision },
      });
      continue;
    }
    const podUid = pod?.metadata?.uid;
    if (!pod || !podUid) continue;
    if (ownerUidOf(pod) !== ownerUid || pod.metadata?.deletionTimestamp || hasPodEnded(pod))
      continue;
    if (podRevisionOf(pod) === revision) continue;
    actions.push({
      ...candidate,
      // An instance made from a pool member keeps the member's Pod name.
      name: pod.metadata?.name ?? name,
      uid: podUid,
      resourceVersion: pod.metadata?.resourceVersion,
      target: targetOf(pod, ownerUid),
    });
  }
  return actions;
}

/**
 * An outdated instance's Pod as read by name (ReapAction.unread): the action with the Pod's
 * preconditions and the probe's target, or undefined when the Pod is not the instance's
 * running one, or already runs the current revision.
 */
export function rolloutOfUnread(
  action: ReapAction,
  pod: V1Pod | undefined,
): ReapAction | undefined {
  const unread = action.unread;
  const uid = pod?.metadata?.uid;
  if (!unread || !pod || !uid) return undefined;
  if (ownerUidOf(pod) !== unread.ownerUid || pod.metadata?.deletionTimestamp || hasPodEnded(pod))
    return undefined;
  if (podRevisionOf(pod) === unread.revision) return undefined;
  return {
    ...action,
    uid,
    resourceVersion: pod.metadata?.resourceVersion,
    target: targetOf(pod, unread.ownerUid),
    unread: undefined,
  };
}

/**
 * The `size` candidates idle longest among all offered, in memory for `size` and never for
 * all of them: a pass replaces at most --max-rollout Pods, longest idle first (the least
 * likely to be used while their Pod restarts), and keeps a few more in reserve for those
 * found busy or changed.
 */
export class LongestIdle {
  private kept: ReapAction[] = [];

  constructor(private readonly size: number) {}

  offer(actions: readonly ReapAction[]): void {
    this.kept.push(...actions);
    if (this.kept.length >= 2 * this.size) this.trim();
  }

  /** The kept candidates, longest idle first. */
  take(): ReapAction[] {
    this.trim();
    return this.kept;
  }

  private trim(): void {
    this.kept.sort((a, b) => (b.idleSeconds ?? 0) - (a.idleSeconds ?? 0));
    this.kept.length = Math.min(this.kept.length, this.size);
  }
}
