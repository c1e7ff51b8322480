import type { DeletePreconditions, DeleteResult, Kube } from "../kube/client.js";
import { isPoolName, LABEL_POD, podNameOf, workspaceNameOf } from "../pool/member.js";
import type { ClientPod } from "./clientpod.js";
import { lastUsedPatch } from "./workspace.js";

/**
 * The names of an instance's Pod and workspace claim, when not its own (one made from a pool
 * member keeps the member's; one over a kept workspace mounts that claim).
 */
export interface InstanceParts {
  pod: string;
  workspace: string;
}

export const partsOf = (cp: ClientPod): InstanceParts => ({
  pod: podNameOf(cp),
  workspace: workspaceNameOf(cp),
});

/**
 * Deletes an instance: its ClientPod (with the preconditions, if any) and then its Pod, so
 * the instance is gone at once rather than when the garbage collector gets to it. The Pod is
 * deleted only when the ClientPod was: a conflict leaves both alone. Its workspace stays.
 */
export async function deleteInstance(
  kube: Kube,
  name: string,
  preconditions?: DeletePreconditions,
  podName: string = name,
): Promise<DeleteResult> {
  const result = await kube.clientPods.delete(name, preconditions);
  if (result === "deleted") await kube.pods.delete(podName);
  return result;
}

/**
 * Records that an instance just ended on its workspace claim (named `claimName`: it was last
 * used now), so the retention counts from here; false when there is no claim.
 */
export async function recordWorkspaceUse(
  kube: Kube,
  claimName: string,
  now: Date,
): Promise<boolean> {
  return (await kube.claims.patch(claimName, lastUsedPatch(now))) !== undefined;
}

/**
 * The instance whose Pod has this name (a gateway path names the Pod): the ClientPod of that
 * name, or for a Pod adopted from the warm pool (named after its member), the instance
 * labelled with it. Found even when the Pod itself is gone, so that it can be started again.
 */
export async function instanceByPodName(
  kube: Kube,
  podName: string,
): Promise<ClientPod | undefined> {
  if (!isPoolName(podName)) return kube.clientPods.get(podName);
  // From the watch cache: the label is written with the ClientPod, long before its Pod can go.
  const { items } = await kube.clientPods.list({
    labelSelector: `${LABEL_POD}=${podName}`,
    fromCache: true,
  });
  return items.find((cp) => !cp.metadata.deletionTimestamp) ?? items[0];
}
