import type { V1Pod } from "@kubernetes/client-node";
import type { Plan } from "../../shared/config/plans.js";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";

/**
 * A new instance made from a pool member (its ClientPod and the adopted Pod), or one to
 * start cold, over the client's kept workspace when it has one; or the instance as it exists
 * already (its ClientPod, read fresh once the claim's create found it).
 */
export type Claim =
  | { claimed: true; clientPod: ClientPod; pod: V1Pod }
  | { claimed: false; keptWorkspace?: string; existing?: ClientPod };

/** The instance a claim makes, and the plan whose pool it is made from. */
export interface PoolWanted {
  clientId: string;
  instanceId: string;
  name: string;
  plan: Plan;
}

/**
 * What making an instance asks of the warm pool (handler/pool/ implements it, and depends on
 * instances/ for limits and readiness, never the other way round).
 */
export interface PoolClaims {
  claim(wanted: PoolWanted, keys: TokenKeys): Promise<Claim>;
}
