import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import { recordOf } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import { tokenOf } from "../../shared/tokens/instance-token.js";
import { endpointOf } from "../instances/body.js";
import type { SigninCodes } from "./code-store.js";
import { sseTokenOf } from "./sse-token.js";

/** What gptme's web UI receives for a login code (contract: "Sign-in"). */
export interface ExchangeAnswer {
  userToken: string;
  instanceUrl: string;
  instanceId: string;
  sseToken: string;
}

/**
 * The operator exchange: a login code for the instance's connection. The code is consumed
 * (exactly one exchange wins) while the instance is read: one that is gone, or was recreated
 * since the code was minted (a new uid), answers nothing, like an unknown code. One write
 * (the code's delete) and two reads.
 */
export async function exchangeCode(
  code: string,
  deps: {
    codes: SigninCodes;
    kube: Kube;
    keyring: TokenKeyring;
    config: HandlerConfig;
    now: () => Date;
  },
): Promise<ExchangeAnswer | undefined> {
  const publicUrl = deps.config.gateway.publicUrl;
  if (publicUrl === undefined) throw new Error("the exchange needs PUBLIC_URL");
  const redeemed = await deps.codes.redeem(code, "login");
  if (!redeemed) return undefined;
  // From the cache: a ClientPod recreated a moment ago and not seen yet only gets a token of
  // the instance it replaced, which its gateway refuses.
  const clientPod = await deps.kube.clientPods.get(redeemed.name, { fromCache: true });
  if (
    !clientPod ||
    clientPod.metadata.uid !== redeemed.uid ||
    clientPod.metadata.deletionTimestamp
  ) {
    return undefined;
  }
  const record = recordOf(clientPod);
  const keys = await deps.keyring.keys();
  const userToken = tokenOf(record, keys);
  const key = record.tokenKeyId === undefined ? undefined : keys.byId.get(record.tokenKeyId);
  const instanceUrl = endpointOf(record, publicUrl, keys)?.url;
  // An instance made before the gateway has no token to hand out.
  if (!userToken || !key || !instanceUrl) return undefined;
  return {
    userToken,
    instanceUrl,
    instanceId: record.instanceId,
    sseToken: sseTokenOf(key, record.uid, deps.now()),
  };
}
