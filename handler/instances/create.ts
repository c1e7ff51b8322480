import type { HandlerConfig } from "../../shared/config/load.js";
import { type Plan, type PlanRecord, planRecordOf } from "../../shared/config/plans.js";
import { type ClientPod, clientPodManifest, LABEL_PLAN } from "../../shared/instance/clientpod.js";
import { ANNOTATION_WORKSPACE_NAME } from "../../shared/instance/parts.js";
import type { Kube } from "../../shared/kube/client.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import type { FleetCap } from "./fleet-cap.js";
import { enforceLimits } from "./limits.js";
import { createRefused } from "./refusals.js";

// The cold path's first writes: the instance's record (exactly once across replicas) and the
// template it is made from.

/** What creating a ClientPod needs of the handler. */
export interface CreateDeps {
  kube: Kube;
  config: HandlerConfig;
  events: { created(plan: string): void };
  /** Whether a new instance is counted against MAX_INSTANCES. */
  fleetCap: FleetCap;
}

/** What a request asks for, and the token keys it was answered with. */
export interface WantedInstance {
  clientId: string;
  instanceId: string;
  name: string;
  keys: TokenKeys;
  /** The client's plan: the new instance's template, timeouts, limit and workspace size. */
  plan: Plan;
}

/**
 * Creates the ClientPod, or reads it when it exists (409). A new ClientPod is checked
 * against the limits after it is created, so two replicas racing past a limit cannot both
 * keep theirs: whoever counts too many deletes its own again.
 */
export async function findOrCreateClientPod(
  deps: CreateDeps,
  { clientId, instanceId, name, keys, plan }: WantedInstance,
  /** A kept workspace claim of another name (made for a pool member) to mount. */
  keptWorkspace?: string,
): Promise<{ clientPod: ClientPod; created: boolean }> {
  const { kube, config } = deps;
  const manifest = clientPodManifest({
    name,
    clientId,
    instanceId,
    podTemplate: plan.template,
    plan: planRecordOf(plan),
    tokenKeyId: keys.current.id,
  });
  if (keptWorkspace && keptWorkspace !== name) {
    manifest.metadata.annotations = {
      ...manifest.metadata.annotations,
      [ANNOTATION_WORKSPACE_NAME]: keptWorkspace,
    };
  }
  // Loops only when the ClientPod is deleted between our create and our read.
  for (let attempt = 0; attempt < 3; attempt++) {
    const result = await kube.clientPods.create(manifest).catch(createRefused);
    if (result.created) {
      await enforceLimits(kube, config, result.object, plan, deps.fleetCap);
      deps.events.created(plan.name);
      return { clientPod: result.object, created: true };
    }
    const existing = await kube.clientPods.get(name);
    if (existing) return { clientPod: existing, created: false };
  }
  throw new Error(`ClientPod ${name} kept vanishing while being created`);
}

/**
 * The merge patch that moves an instance to a plan: its label, and the plan with its idle
 * timeout and lifetime on the spec (the reaper reads them there, and needs no plans); a plan
 * that sets none removes them (null), and the fleet-wide ones apply.
 */
export function planPatch(plan: PlanRecord): object {
  return {
    metadata: { labels: { [LABEL_PLAN]: plan.name } },
    spec: {
      plan: plan.name,
      idleTimeoutSeconds: plan.idleTimeoutSeconds ?? null,
      maxLifetimeSeconds: plan.maxLifetimeSeconds ?? null,
    },
  };
}
