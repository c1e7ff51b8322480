import type { V1Pod } from "@kubernetes/client-node";
import { type ClientPod, LABEL_CLIENT } from "../shared/instance/clientpod.js";
import type { ExpiryDefaults } from "../shared/instance/expiry.js";
import { partsOf } from "../shared/instance/parts.js";
import { hasPodEnded, ownerNameOf, ownerUidOf } from "../shared/instance/pod-status.js";
import { planClientPods, podsByName, type ReapAction } from "./plan.js";

// Pods that no ClientPod of their batch owns (pure). The lists are joined by name, so a Pod
// normally meets its ClientPod in the same batch. One that does not is an orphan (no owner at
// all), or its owner was not read with it: gone (an orphan too), made after the reaper's read,
// or named otherwise (an instance adopted a pool member's Pod, which keeps the member's
// name). The owners of Pods named otherwise are remembered across batches in a bounded set;
// anything else is read again by name before it is judged, so nothing is deleted on the
// strength of a list alone.

export interface Strays {
  /** Pods no ClientPod owns (no owner reference): deleted, by uid. */
  orphans: ReapAction[];
  /**
   * Pods whose owner was not read with them, to be judged once it is read (planUnread): an
   * orphan if it is gone, or an ended Pod of a live instance named otherwise (pod-ended).
   */
  unread: V1Pod[];
}

/** The uids to remember of a batch's ClientPods: those whose Pod is named otherwise. */
export function ownersNamedOtherwise(clientPods: readonly ClientPod[]): string[] {
  return clientPods
    .filter((cp) => partsOf(cp).pod !== cp.metadata.name)
    .map((cp) => cp.metadata.uid);
}

/**
 * The strays of a batch. `owners` holds (at least) the uids of the ClientPods read so far
 * whose Pod is named otherwise (ownersNamedOtherwise): such a Pod whose owner it holds is an
 * adopted Pod and stays, unless it ended, when its instance is judged.
 */
export function planStrays(
  clientPods: readonly ClientPod[],
  pods: readonly V1Pod[],
  owners: { mightHave(uid: string): boolean },
): Strays {
  const here = new Set(clientPods.map((cp) => cp.metadata.uid));
  const strays: Strays = { orphans: [], unread: [] };
  for (const pod of pods) {
    const { name, uid, deletionTimestamp } = pod.metadata ?? {};
    if (!name || !uid || deletionTimestamp) continue;
    const owner = ownerUidOf(pod);
    // Its instance is in this batch: planClientPods judges them together.
    if (owner && here.has(owner)) continue;
    if (!owner) {
      strays.orphans.push(orphan(pod, name, uid));
    } else if (ownerNameOf(pod) !== name && owners.mightHave(owner)) {
      // An adopted Pod of a live instance; an ended one ends its instance.
      if (hasPodEnded(pod)) strays.unread.push(pod);
    } else {
      strays.unread.push(pod);
    }
  }
  return strays;
}

/**
 * A stray Pod judged once its owner (by the name in its owner reference) was read again:
 * an orphan if that ClientPod is gone or is another one (another uid); the instance, if its
 * Pod ended (max-lifetime and idle are the batch's to judge, from the reaper's own read).
 */
export function planUnread(
  pod: V1Pod,
  owner: ClientPod | undefined,
  now: Date,
  defaults: ExpiryDefaults,
): ReapAction[] {
  const { name, uid } = pod.metadata ?? {};
  if (!name || !uid) return [];
  if (!owner || owner.metadata.uid !== ownerUidOf(pod)) return [orphan(pod, name, uid)];
  if (!hasPodEnded(pod)) return [];
  return planClientPods([owner], podsByName([pod]), now, defaults).filter(
    (action) => action.reason === "pod-ended",
  );
}

function orphan(pod: V1Pod, name: string, uid: string): ReapAction {
  return {
    kind: "pod",
    name,
    clientId: pod.metadata?.labels?.[LABEL_CLIENT],
    reason: "orphan",
    idleSeconds: undefined,
    uid,
    resourceVersion: undefined,
  };
}
