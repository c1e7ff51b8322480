import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import type { Plan } from "../../shared/config/plans.js";
import type { Kube } from "../../shared/kube/client.js";
import type { PoolClaims } from "./pool-claims.js";
import type { ServingProbes } from "./serving.js";
import type { Templates } from "./templates.js";

// What the instances' lifecycle (instances.ts) is given, and who asks it for an instance.

/** What happens to instances, by plan (`none`: an instance from before plans). */
export interface InstanceEvents {
  created(plan: string): void;
  replaced(plan: string): void;
  deleted(plan: string): void;
}

/** Who asks for an instance: the client, and the plan its instances get now. */
export interface Requester {
  clientId: string;
  plan: Plan;
}

export interface InstanceDeps {
  kube: Kube;
  config: HandlerConfig;
  now: () => Date;
  events: InstanceEvents;
  keyring: TokenKeyring;
  /** Asks starting gptme-servers whether they answer (shared with the gateway). */
  serving: ServingProbes;
  /** The PodTemplates new Pods are made from, read at most once per 2 s (shared with the pool). */
  templates: Templates;
  /** Hands out started instances for new ones; undefined with POOL_SIZE=0. */
  pool?: PoolClaims;
  /** Told of the Pod name of every instance deleted here (the gateway forgets it at once). */
  onRemoved?: (name: string) => void;
  /** Aborted when the process shuts down: readiness waits end early so draining is quick. */
  shutdown?: AbortSignal;
}
