import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";

/**
 * A new instance made from a pool member (its ClientPod and the adopted Pod), or one to
 * start cold, over the client's kept workspace when it has one.
 */
export type Claim =
  | { claimed: true; clientPod: ClientPod; pod: V1Pod }
  | { claimed: false; keptWorkspace?: string };

/**
 * What making an instance asks of the warm pool (handler/pool/ implements it, and depends on
 * instances/ for limits and readiness, never the other way round).
 */
export interface PoolClaims {
  claim(
    wanted: { clientId: string; instanceId: string; name: string },
    keys: TokenKeys,
  ): Promise<Claim>;
}
