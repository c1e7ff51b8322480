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
