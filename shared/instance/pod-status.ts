import type { V1Pod } from "@kubernetes/client-node";
import { KIND } from "./clientpod.js";

/** A Pod whose containers stopped for good: it will never serve again. */
export function hasPodEnded(pod: V1Pod): boolean {
  return pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded";
}

/** The uid of the ClientPod that owns a Pod (its controller ownerReference). */
export function ownerUidOf(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((ref) => ref.controller && ref.kind === KIND)?.uid;
}

/** Whether the kubelet reports the Pod Ready (which lags, or on KWOK leads, its server). */
export function isPodReady(pod: V1Pod): boolean {
  return (
    pod.status?.phase === "Running" &&
    !pod.metadata?.deletionTimestamp &&
    (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/** The name of the ClientPod that owns a Pod (a claimed pool member's Pod has another name). */
export function ownerNameOf(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((ref) => ref.controller && ref.kind === KIND)?.name;
}
