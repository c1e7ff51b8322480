import { KubeApiError, KubeUnavailableError } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";

export function fleetFull(): Error {
  return new FleetError("fleet_full", "The fleet is at capacity; try again later.");
}

/**
 * The namespace's ResourceQuota (the hard fleet cap) refuses a create with 403. Over its cap
 * the fleet is full. "Status unknown" means the quota controller has not counted the resource
 * yet (after a first install, until its next full resync: 5 minutes by default): a passing
 * state of the API server, answered as such.
 */
function quotaRefusal(error: unknown): Error | undefined {
  if (!(error instanceof KubeApiError) || error.status !== 403) return undefined;
  if (/exceeded quota/i.test(error.message)) return fleetFull();
  if (/status unknown for quota/i.test(error.message)) {
    return new KubeUnavailableError("the fleet's ResourceQuota has not been counted yet");
  }
  return undefined;
}

/** What a refused ClientPod or workspace claim create means to the client. */
export function createRefused(error: unknown): never {
  throw quotaRefusal(error) ?? error;
}

/** What a refused Pod create means: quota as above; admission or validation of the template's Pod. */
export function podRefused(error: unknown): never {
  const quota = quotaRefusal(error);
  if (quota) throw quota;
  if (error instanceof KubeApiError && (error.status === 403 || error.status === 422)) {
    throw new FleetError(
      "pod_rejected",
      `The API server rejected the instance's Pod: ${error.message}`,
    );
  }
  throw error;
}
