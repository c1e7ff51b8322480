import { resolve } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { adminKubeConfig, eventually, kubeconfigPath } from "./cluster.js";
import { kubectl } from "./kubectl.js";

/** The local deployment's manifests, and the namespace they make. */
export const FLEET_MANIFESTS = resolve(import.meta.dirname, "../../k8s/local/fleet-operator");
export const FLEET_NAMESPACE = "gptme-fleet";

/**
 * Applies the local deployment's manifests (again: applying is idempotent) and waits until
 * they can be used. Until the quota controller has counted ClientPods (it discovers a CRD
 * new to it within about 30 s), the API server refuses their creation and the handler
 * answers 503 kubernetes_unavailable: wait, as a rollout would, before using the deployment.
 */
export async function installFleetManifests(): Promise<void> {
  kubectl(kubeconfigPath(), ["apply", "-f", FLEET_MANIFESTS]);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await eventually(
    async () => {
      const quota = await core.readNamespacedResourceQuota({
        name: "fleet-instances",
        namespace: FLEET_NAMESPACE,
      });
      return quota.status?.used?.["count/clientpods.gptme.ai"];
    },
    "the fleet's ResourceQuota to count ClientPods",
    90_000,
  );
}
