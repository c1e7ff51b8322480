import type { DeletePreconditions, DeleteResult, Kube } from "./kube.js";

/**
 * Deletes an instance: its ClientPod (with the preconditions, if any) and then its Pod, so
 * the instance is gone at once rather than when the garbage collector gets to it. The Pod is
 * deleted only when the ClientPod was: a conflict leaves both alone.
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
