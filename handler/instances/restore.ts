import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import type { ClientPod, ClientPodStatus } from "../../shared/instance/clientpod.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { podStepOf } from "./next-step.js";
import { type StartDeps, startPod } from "./start.js";

export interface RestoreDeps extends StartDeps {
  events: { replaced(plan: string): void };
}

/** Where a ClientPod's Pod stands, and what a restore is to do by when. */
export interface RestoreInput {
  /** Whether the ClientPod is new (this request made it). */
  created: boolean;
  /** Its Pod as read, if any. */
  pod: V1Pod | undefined;
  /** The template a new Pod is made from: the instance's plan's, as it is now. */
  template: V1PodTemplate;
  keys: TokenKeys;
  deadline: number;
  /** A new instance's first status is left to the caller (Started.firstStatus). */
  firstStatusLater?: boolean;
}

export interface Restored {
  clientPod: ClientPod;
  /** A new instance's first status, left to the caller. */
  firstStatus?: ClientPodStatus;
  pod: V1Pod | undefined;
  /** Whether this call created the Pod. */
  created: boolean;
  /** False when the deadline passed while an old Pod was still terminating (the answer is that Pod). */
  waited: boolean;
}

/**
 * Moves a ClientPod's Pod one step toward running, as podStepOf decides: an ended or stale
 * one is deleted, a terminating one waited out, a missing one started. Shared by a request's repair and the
 * gateway's heal; every step tolerates another replica doing the same at the same time.
 */
export async function restorePod(
  deps: RestoreDeps,
  clientPod: ClientPod,
  { created, pod, template, keys, deadline, firstStatusLater }: RestoreInput,
): Promise<Restored> {
  const { kube } = deps;
  let current = pod;
  let step = podStepOf(clientPod, current);
  if (current && step === "replace") {
    // The uid precondition makes sure we delete the Pod we judged, not one another replica
    // just created; then the Pod as it is now decides (gone, terminating, or already anew).
    const podName = current.metadata?.name ?? clientPod.metadata.name;
    if ((await kube.pods.delete(podName, { uid: current.metadata?.uid })) === "deleted")
      deps.events.replaced(clientPod.spec.plan ?? "none");
    current = await kube.pods.get(podName);
    step = podStepOf(clientPod, current);
  }
  if (current && step === "wait-out") {
    current = await kube.pods.waitFor(current, () => false, deadline - Date.now(), deps.shutdown);
    if (current) return { clientPod, pod: current, created: false, waited: false };
    step = "start";
  }
  if (step !== "start") return { clientPod, pod: current, created: false, waited: true };
  const started = await startPod(deps, clientPod, template, keys, {
    isNew: created,
    deadline,
    firstStatusLater,
  });
  return { ...started, waited: true };
}
