import type { V1Pod } from "@kubernetes/client-node";
import { statusOf } from "../../shared/instance/status.js";
import type { FleetError } from "../errors/fleet-error.js";
import type { Instances } from "../instances/instances.js";
import type { ServingProbes } from "../instances/serving.js";
import { type CredentialCheck, type Decision, decide, type ServingTarget } from "./decision.js";
import type { Lookup, Targets } from "./targets.js";

/**
 * A refusal decided from an entry read this recently is final; an older cached entry is read
 * again first (its Pod may have been replaced or become ready since). Bounds what a stream of
 * wrong credentials for one instance costs: at most ten reads a second per replica.
 */
export const RECHECK_MS = 100;

/** A front of the admission: how it reads a request's credential, and what it may do. */
export interface Front<C> extends CredentialCheck<C> {
  /** The answer when its Pod does not serve (and the request was not held, or the hold ran out). */
  notServing(): FleetError;
  /** Whether a missing Pod is started again for this request (the gateway's heal). */
  heals: boolean;
}

export interface AdmissionDeps {
  targets: Targets;
  instances: Instances;
  serving: ServingProbes;
  /** How long a request waits for a starting instance (GATEWAY_HOLD). */
  holdMs: number;
  now?: () => number;
}

/**
 * The one admission of the instance gateway and the preview hosts: decide from what is known
 * (cached for a second per replica), read again before turning a request away on a cached
 * entry, start a missing Pod again (heal), wait for a starting one (hold), then admit or
 * refuse. A request for a serving instance with a good credential reads nothing.
 */
export class Admission {
  /** Pods being started again here: the requests held for one instance share its restart. */
  private readonly healing = new Map<string, Promise<V1Pod | undefined>>();
  private readonly now: () => number;

  constructor(private readonly deps: AdmissionDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * The common case, at no cost but a map lookup: the instance is known (read less than a
   * second ago), serves, and the credential is good. Undefined: ask `admit`.
   */
  admitNow<C>(name: string, front: Front<C>): { target: ServingTarget; credential: C } | undefined {
    const lookup = this.deps.targets.cached(name);
    const decision = lookup && decide(lookup.target, front);
    return decision?.kind === "admit" ? decision : undefined;
  }

  /** The instance `name` names, admitted with the front's credential; throws the refusal. */
  async admit<C>(name: string, front: Front<C>): Promise<{ target: ServingTarget; credential: C }> {
    const { targets } = this.deps;
    const first = targets.get(name);
    let lookup = first instanceof Promise ? await first : first;
    let decision = decide(lookup.target, front);
    if (decision.kind === "admit") return decision;
    if (this.mayBeStale(lookup)) {
      lookup = await targets.get(name, { fresh: true });
      decision = decide(lookup.target, front);
    }
    if (decision.kind === "heal" && front.heals) decision = await this.heal(name, front);
    if (decision.kind === "hold") decision = await this.hold(name, decision.target.pod?.pod, front);
    if (decision.kind === "admit") return decision;
    throw decision.kind === "refuse" ? decision.refusal : front.notServing();
  }

  /** Whether a refusal came from a cached entry old enough to be read again. */
  private mayBeStale(lookup: Lookup): boolean {
    return lookup.cached && lookup.target !== undefined && this.now() - lookup.readAt >= RECHECK_MS;
  }

  /**
   * Its Pod is gone (drained, evicted, replaced by a rollout) or ended: start it again, as
   * GET /instances/:id would, and hold the request until it answers (GATEWAY_HOLD). Other
   * replicas may do the same at once: the Pod's fixed name lets only one create succeed
   * (the others use it). The gateway never creates an instance.
   */
  private async heal<C>(name: string, front: Front<C>): Promise<Decision<C>> {
    let healing = this.healing.get(name);
    if (!healing) {
      const deadline = Date.now() + this.deps.holdMs;
      healing = this.deps.instances
        .restart(name, deadline)
        .finally(() => this.healing.delete(name));
      this.healing.set(name, healing);
    }
    return this.decideWith(name, await healing, front);
  }

  /**
   * Its own Pod is starting: hold the request until its gptme-server answers, up to
   * GATEWAY_HOLD, rather than turn it away. Every request held for one Pod shares its
   * poller; waiting reads nothing.
   */
  private async hold<C>(
    name: string,
    pod: V1Pod | undefined,
    front: Front<C>,
  ): Promise<Decision<C>> {
    const serving =
      pod && (await this.deps.serving.waitUntilServing(pod, Date.now() + this.deps.holdMs));
    return this.decideWith(name, serving, front);
  }

  /** Decides again with a newer state of the Pod, when it serves now. */
  private async decideWith<C>(
    name: string,
    pod: V1Pod | undefined,
    front: Front<C>,
  ): Promise<Decision<C>> {
    if (!pod || statusOf(pod) !== "ready") return { kind: "refuse", refusal: front.notServing() };
    this.deps.targets.remember(name, pod);
    const lookup = await this.deps.targets.get(name);
    const decision = decide(lookup.target, front);
    return decision.kind === "admit" || decision.kind === "refuse"
      ? decision
      : { kind: "refuse", refusal: front.notServing() };
  }
}
