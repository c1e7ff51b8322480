import type { HandlerConfig } from "../../shared/config/load.js";
import type { Plan } from "../../shared/config/plans.js";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { slotHolderOf, slotManifest, slotNameOf, slotOrder } from "../../shared/instance/slots.js";
import type { Kube } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";
import type { FleetCap } from "./fleet-cap.js";
import { fleetFull } from "./refusals.js";

/**
 * Checks a new ClientPod against the limits after it is created: it takes one of its client's
 * slots (shared/instance/slots.ts: exact across replicas, at the same cost in any fleet), and
 * the fleet must not be over MAX_INSTANCES: counted only where no ResourceQuota caps it
 * (fleet-cap.ts; the quota refused the create already). Over a limit, it deletes its own
 * ClientPod again (uid precondition; its slot goes with it) before any Pod exists.
 */
export async function enforceLimits(
  kube: Kube,
  config: HandlerConfig,
  clientPod: ClientPod,
  /** The client's plan: its per-client limit. */
  plan: Plan,
  /** The fleet's cap, or none: the ClientPod takes a pool member's place, already counted. */
  fleetCap: FleetCap | undefined,
): Promise<void> {
  const limit = plan.maxInstancesPerClient;
  const countFleet = async () =>
    fleetCap && (await fleetCap.countNeeded()) ? kube.clientPods.count() : 0;
  const [slot, fleetSize] = await Promise.all([takeSlot(kube, clientPod, limit), countFleet()]);
  let rejection: Error | undefined;
  if (!slot) {
    rejection = new FleetError(
      "instance_limit",
      `You already have ${limit} ${limit === 1 ? "instance" : "instances"}, the most your plan "${plan.name}" allows; delete one first.`,
    );
  } else if (fleetSize > config.maxInstances) {
    rejection = fleetFull();
  }
  if (rejection) {
    await kube.clientPods.delete(clientPod.metadata.name, { uid: clientPod.metadata.uid });
    throw rejection;
  }
}

/**
 * Takes a free slot of the instance's client for it; false when all are held. A slot still
 * held for an instance that is gone or being deleted (the garbage collector frees it moments
 * later) is freed here and taken.
 */
async function takeSlot(kube: Kube, clientPod: ClientPod, slots: number): Promise<boolean> {
  const { clientId } = clientPod.spec;
  for (const index of slotOrder(clientPod.metadata.name, slots)) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await kube.configMaps.create(slotManifest(clientPod, index))).created) return true;
      const name = slotNameOf(clientId, index);
      const slot = await kube.configMaps.get(name);
      if (!slot) continue;
      const holder = slotHolderOf(slot);
      if (holder?.uid === clientPod.metadata.uid) return true;
      if (holder && (await isHeld(kube, holder))) break;
      await kube.configMaps.delete(name, { uid: slot.metadata?.uid ?? "" });
    }
  }
  return false;
}

/** Whether the instance holding a slot is still there and not being deleted. */
async function isHeld(kube: Kube, holder: { name: string; uid: string }): Promise<boolean> {
  const instance = await kube.clientPods.get(holder.name);
  return instance?.metadata.uid === holder.uid && !instance.metadata.deletionTimestamp;
}
