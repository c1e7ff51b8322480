import type { DeletePreconditions, DeleteResult, Kube } from "./kube/client.js";
import { lastUsedPatch } from "./workspace.js";

/**
 * Deletes an instance: its ClientPod (with the preconditions, if any) and then its Pod, so
 * the instance is gone at once rather than when the garbage collector gets to it. The Pod is
 * deleted only when the ClientPod was: a conflict leaves both alone. Its workspace stays.
 */
export async function deleteInstance(
  kube: Kube,
  name: string,
  preconditions?: DeletePreconditions,
): Promise<DeleteResult> {
  const result = await kube.clientPods.delete(name, preconditions);
  if (result === "deleted") await kube.pods.delete(name);
  return result;
}

/**
 * Records that an instance just ended on its workspace claim (it was last used now), so the
 * retention counts from here; false when there is no claim (an instance without one).
 */
export async function recordWorkspaceUse(kube: Kube, name: string, now: Date): Promise<boolean> {
  return (await kube.claims.patch(name, lastUsedPatch(now))) !== undefined;
}
