import type { V1ConfigMap } from "@kubernetes/client-node";
import { type ClientPod, fleetLabels, LABEL_KIND } from "./clientpod.js";
import { sha256Hex } from "./names.js";

// A client's instance limit, kept exact across replicas without counting the fleet: each of
// a client's instances holds one of its MAX_INSTANCES_PER_CLIENT slots, a ConfigMap of a
// name fixed by (client, slot number) and owned by the instance's ClientPod. Taking a slot is
// a create, which the API server makes atomic (of two racers for one slot exactly one gets
// it), and the garbage collector frees it with the instance; no slot left is the limit. A
// label query for the client's ClientPods, as before, walks every ClientPod of the namespace.

export const SLOT_KIND = "instance-slot";
const INSTANCE_KEY = "instance";

/** Slot `index` of a client: `gptme-slot-<64 bits of the client id's hash>-<index>`. */
export const slotNameOf = (clientId: string, index: number): string =>
  `gptme-slot-${sha256Hex(clientId).slice(0, 16)}-${index}`;

/**
 * The order in which an instance tries its client's slots: from one its id picks, so that a
 * client's instances created at once mostly try different slots first.
 */
export function slotOrder(instanceName: string, slots: number): number[] {
  const first = Number.parseInt(sha256Hex(instanceName).slice(0, 8), 16) % Math.max(1, slots);
  return Array.from({ length: slots }, (_, i) => (first + i) % slots);
}

export function slotManifest(instance: ClientPod, index: number): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: slotNameOf(instance.spec.clientId, index),
      labels: {
        ...fleetLabels(instance.spec.clientId, instance.spec.instanceId),
        [LABEL_KIND]: SLOT_KIND,
      },
      ownerReferences: [
        {
          apiVersion: instance.apiVersion,
          kind: instance.kind,
          name: instance.metadata.name,
          uid: instance.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: { [INSTANCE_KEY]: instance.metadata.name },
  };
}

/** Who holds a slot: its owner's name and uid, from the ConfigMap as read. */
export function slotHolderOf(slot: V1ConfigMap): { name: string; uid: string } | undefined {
  const owner = slot.metadata?.ownerReferences?.find((ref) => ref.controller);
  return owner ? { name: owner.name, uid: owner.uid } : undefined;
}
