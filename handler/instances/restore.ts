import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { hasPodEnded, ownerUidOf } from "../../shared/instance/pod-status.js";
import { isTerminating } from "../../shared/instance/status.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { templateOf } from "./create.js";
import { type StartDeps, startPod } from "./start.js";

export interface RestoreDeps extends StartDeps {
  events: { replaced(): void };
}

/** Where a ClientPod's Pod stands, and what a restore is to do by when. */
export interface RestoreInput {
  /** Whether the ClientPod is new (this request made it). */
  created: boolean;
  /** Its Pod as read, if any. */
  pod: V1Pod | undefined;
  /** The fleet's current template (the ClientPod's own is read when it names another). */
  template: V1PodTemplate;
  keys: TokenKeys;
  deadline: number;
}

export interface Restored {
  clientPod: ClientPod;
  pod: V1Pod | undefined;
  /** Whether this call created the Pod. */
  created: boolean;
  /** False when the deadline passed while an old Pod was still terminating (the answer is that Pod). */
  waited: boolean;
}

/**
 * Moves a ClientPod's Pod one step toward running: an ended or stale one is deleted, a
 * terminating one waited out, a missing one started. Shared by a request's repair and the
 * gateway's heal; every step tolerates another replica doing the same at the same time.
 */
export async function restorePod(
  deps: RestoreDeps,
  clientPod: ClientPod,
  { created, pod, template, keys, deadline }: RestoreInput,
): Promise<Restored> {
  const { kube } = deps;
  const { name } = clientPod.metadata;
  let current = pod;
  let podCreated = false;
  if (
    current &&
    !isTerminating(current) &&
    (hasPodEnded(current) || ownerUidOf(current) !== clientPod.metadata.uid)
  ) {
    // Ended, or left over from an earlier ClientPod: replace it. The uid precondition makes
    // sure we delete the Pod we judged, not one another replica just created.
    const podName = current.metadata?.name ?? name;
    if ((await kube.pods.delete(podName, { uid: current.metadata?.uid })) === "deleted")
      deps.events.replaced();
    current = await kube.pods.get(podName);
  }
  if (current && isTerminating(current)) {
    current = await kube.pods.waitFor(current, () => false, deadline - Date.now(), deps.shutdown);
    if (current) return { clientPod, pod: current, created: false, waited: false };
  }
  if (!current) {
    const source =
      clientPod.spec.podTemplate === template.metadata?.name
        ? template
        : await templateOf(kube, clientPod.spec.podTemplate);
    const started = await startPod(deps, clientPod, source, keys, { isNew: created, deadline });
    ({ clientPod, pod: current, created: podCreated } = started);
  }
  return { clientPod, pod: current, created: podCreated, waited: true };
}
