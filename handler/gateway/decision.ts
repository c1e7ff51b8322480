import type { FleetError } from "../errors/fleet-error.js";
import { isServingTarget, type PodView, type Target } from "./target.js";

/** A target whose own Pod serves, at this address. */
export type ServingTarget = Target & { pod: PodView & { host: string } };

/**
 * What an admission decides for a request, from what is known of the instance it names and
 * of what it presents:
 * - `admit`: the credential is this instance's and its own Pod serves: forward it;
 * - `refuse`: no such instance, or not this instance's credential;
 * - `hold`: the credential is good and its own Pod is starting: wait until it serves;
 * - `heal`: the credential is good, and its Pod is gone, ended, being deleted or another
 *   instance's: start it again (where the front may), then wait.
 */
export type Decision<C> =
  | { kind: "admit"; target: ServingTarget; credential: C }
  | { kind: "refuse"; refusal: FleetError }
  | { kind: "hold"; target: Target }
  | { kind: "heal"; target: Target };

/** How a front (the instance gateway, a preview host) reads what a request presents. */
export interface CredentialCheck<C> {
  /** The answer when no instance has the name (the same as a wrong credential, where one is asked). */
  unknown(): FleetError;
  /** The request's credential for this instance (what it is admitted with), or why not. */
  check(target: Target): C | FleetError;
}

/** Decides, reading nothing: the admission acts on it (reads again, heals, holds, forwards). */
export function decide<C>(target: Target | undefined, front: CredentialCheck<C>): Decision<C> {
  if (!target) return { kind: "refuse", refusal: front.unknown() };
  const credential = front.check(target);
  if (isRefusal(credential)) return { kind: "refuse", refusal: credential };
  if (isServingTarget(target)) return { kind: "admit", target, credential };
  const { pod } = target;
  if (pod?.ownerUid === target.record.uid && pod.status === "starting") {
    return { kind: "hold", target };
  }
  return { kind: "heal", target };
}

// A credential is whatever the front says it is; a refusal is always an Error.
const isRefusal = <C>(value: C | FleetError): value is FleetError => value instanceof Error;
