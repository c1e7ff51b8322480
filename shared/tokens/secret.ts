import type { V1EnvVar, V1Secret } from "@kubernetes/client-node";
import { API_VERSION, type ClientPod, fleetLabels, KIND } from "../instance/clientpod.js";

/** The variable gptme-server reads its bearer token from. */
export const TOKEN_ENV = "GPTME_SERVER_TOKEN";
const TOKEN_FIELD = "token";

/**
 * The name of the Secret holding an instance's token. It carries the ClientPod's uid, so a
 * recreated instance never meets the Secret of the one before (which the garbage collector
 * may not have removed yet): a 409 on create then always means "this very Secret exists".
 */
export function tokenSecretNameOf(clientPod: ClientPod): string {
  return `${clientPod.metadata.name}-token-${clientPod.metadata.uid.slice(0, 8)}`;
}

/** The Secret that delivers the token to the instance's pod; deleted with its ClientPod. */
export function tokenSecret(clientPod: ClientPod, token: string): V1Secret {
  const { name, uid } = clientPod.metadata;
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: tokenSecretNameOf(clientPod),
      labels: fleetLabels(clientPod.spec.clientId, clientPod.spec.instanceId),
      ownerReferences: [
        { apiVersion: API_VERSION, kind: KIND, name, uid, blockOwnerDeletion: true },
      ],
    },
    type: "Opaque",
    stringData: { [TOKEN_FIELD]: token },
  };
}

/** The environment variable that hands the token to gptme-server, by reference only. */
export function tokenEnv(clientPod: ClientPod): V1EnvVar {
  return {
    name: TOKEN_ENV,
    valueFrom: { secretKeyRef: { name: tokenSecretNameOf(clientPod), key: TOKEN_FIELD } },
  };
}
