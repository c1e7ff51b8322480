import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { adminKubeConfig } from "./cluster.js";

/**
 * Credentials of a ServiceAccount, from a short-lived token the API server issues
 * (TokenRequest): tests then run exactly with the rights the manifests grant it.
 */
export async function serviceAccountKubeConfig(
  namespace: string,
  name: string,
): Promise<KubeConfig> {
  const admin = adminKubeConfig();
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const cluster = admin.getCurrentCluster();
  if (!cluster || !token.status?.token) throw new Error("no cluster or no token");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token: token.status.token }],
    contexts: [{ name, cluster: cluster.name, user: name, namespace }],
    currentContext: name,
  });
  return kc;
}
