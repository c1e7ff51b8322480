import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../instance/clientpod.js";
import { isPoolName, podNameOf } from "../instance/parts.js";
import { ownerNameOf, ownerUidOf } from "../instance/pod-status.js";
import { slotHolderOf, slotNamesOf } from "../instance/slots.js";
import { lastUsedPatch } from "../instance/workspace.js";
import type { DeletePreconditions, DeleteResult, Kube } from "../kube/client.js";
import { aliasedInstanceOf } from "../pool/alias.js";

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
 * Records that an instance just ended on its workspace claim (named `workspaceName`: it was last
 * used now), so the retention counts from here; false when there is no claim.
 */
export async function recordWorkspaceUse(
  kube: Kube,
  workspaceName: string,
  now: Date,
): Promise<boolean> {
  return (await kube.workspaces.patch(workspaceName, lastUsedPatch(now))) !== undefined;
}

/**
 * The instance whose Pod has this name (a gateway path names the Pod): the ClientPod of that
 * name, or for a Pod adopted from the warm pool (named after its member), the instance its
 * alias names. Found even when the Pod itself is gone, so that it can be started again; by
 * name from the API server's cache, at the same cost in any fleet.
 *
 * A claim answers before it writes the alias (after the Pod's adoption, which names the
 * instance as the Pod's owner), and its client asks the gateway at once, often another
 * replica: without an alias yet, the Pod's owner names the instance. So a pool-shaped name
 * that names nothing costs two cached reads (alias, Pod), one that names an instance two.
 */
export async function instanceByPodName(
  kube: Kube,
  podName: string,
): Promise<ClientPod | undefined> {
  if (!isPoolName(podName)) return kube.clientPods.get(podName, { fromCache: true });
  const alias = await kube.configMaps.get(podName, { fromCache: true });
  const name = aliasedInstanceOf(alias) ?? (await adoptingInstanceOf(kube, podName));
  const clientPod =
    name === undefined ? undefined : await kube.clientPods.get(name, { fromCache: true });
  // An alias outlives a recreated instance of that name until the garbage collector gets to it.
  return clientPod && podNameOf(clientPod) === podName ? clientPod : undefined;
}

/** The instance that adopted a member's Pod (its owner), unless it is still the member's own. */
async function adoptingInstanceOf(kube: Kube, podName: string): Promise<string | undefined> {
  const pod = await kube.pods.get(podName, { fromCache: true });
  const owner = pod && ownerNameOf(pod);
  return owner === undefined || isPoolName(owner) ? undefined : owner;
}

/**
 * A client's instances, each with its own Pod, by name: found through the slots they hold
 * (one per instance, instance/slots.ts), as many reads as the largest of `limits` plus two per
 * instance, at the same cost in any fleet (a label query walks every ClientPod and Pod of the
 * namespace). The slots and ClientPods are read fresh, as the limit reads them, so an instance
 * just made is found; the Pods (status only) from the cache. In name order.
 */
export async function instancesOfClient(
  kube: Kube,
  clientId: string,
  limits: readonly number[],
): Promise<{ clientPod: ClientPod; pod: V1Pod | undefined }[]> {
  const slots = await Promise.all(
    slotNamesOf(clientId, limits).map((name) => kube.configMaps.get(name)),
  );
  const holders = slots.flatMap((slot) => {
    const holder = slot && slotHolderOf(slot);
    return holder ? [holder] : [];
  });
  const clientPods = (
    await Promise.all(holders.map(({ name }) => kube.clientPods.get(name)))
  ).filter(
    (cp, i): cp is ClientPod =>
      cp !== undefined && cp.metadata.uid === holders[i]?.uid && cp.spec.clientId === clientId,
  );
  const pods = await Promise.all(
    clientPods.map((cp) => kube.pods.get(podNameOf(cp), { fromCache: true })),
  );
  return clientPods
    .map((clientPod, i) => {
      const pod = pods[i];
      return {
        clientPod,
        pod: pod && ownerUidOf(pod) === clientPod.metadata.uid ? pod : undefined,
      };
    })
    .sort((a, b) => a.clientPod.metadata.name.localeCompare(b.clientPod.metadata.name));
}
