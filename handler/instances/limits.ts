import type { HandlerConfig } from "../../shared/config/load.js";
import { type ClientPod, clientSelector } from "../../shared/instance/clientpod.js";
import type { Kube } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";
import { fleetFull } from "./refusals.js";

/**
 * Checks a new ClientPod against the limits after it is created, so two replicas racing past
 * a limit cannot both keep theirs: whoever counts too many deletes its own again (uid
 * precondition), before any Pod exists. Of two racers at least one sees the other.
 */
export async function enforceLimits(
  kube: Kube,
  config: HandlerConfig,
  clientPod: ClientPod,
  /** `fleet: false`: the ClientPod takes a pool member's place, already counted. */
  { fleet = true } = {},
): Promise<void> {
  const [own, fleetSize] = await Promise.all([
    kube.clientPods.list({ labelSelector: clientSelector(clientPod.spec.clientId) }),
    fleet ? kube.clientPods.count() : 0,
  ]);
  const ownLive = own.items.filter((cp) => !cp.metadata.deletionTimestamp).length;
  let rejection: Error | undefined;
  if (ownLive > config.maxInstancesPerClient) {
    rejection = new FleetError(
      "instance_limit",
      `You already have ${config.maxInstancesPerClient} instances, the most allowed; delete one first.`,
    );
  } else if (fleet && fleetSize > config.maxInstances) {
    rejection = fleetFull();
  }
  if (rejection) {
    await kube.clientPods.delete(clientPod.metadata.name, { uid: clientPod.metadata.uid });
    throw rejection;
  }
}
