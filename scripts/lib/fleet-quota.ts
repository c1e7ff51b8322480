import type { CoreV1Api } from "@kubernetes/client-node";
import { CLIENTPOD_QUOTA } from "../../handler/instances/fleet-cap.js";

/**
 * The fleet's cap as the manifests set it (k8s/local/fleet-operator/02-config.yaml): the
 * ResourceQuota `fleet-instances` on ClientPods, which the handler trusts instead of counting
 * the fleet when it is at most MAX_INSTANCES. Returns once the quota controller has counted
 * them (until then the API server refuses their creates), within 120 s.
 */
export async function installFleetQuota(
  core: CoreV1Api,
  namespace: string,
  hard: number,
): Promise<void> {
  await core.createNamespacedResourceQuota({
    namespace,
    body: {
      metadata: { name: "fleet-instances" },
      spec: { hard: { [CLIENTPOD_QUOTA]: String(hard) } },
    },
  });
  for (let i = 0; i < 1200; i++) {
    const quota = await core.readNamespacedResourceQuota({ name: "fleet-instances", namespace });
    if (quota.status?.used?.[CLIENTPOD_QUOTA] !== undefined) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the fleet's quota was not counted within 120 s");
}
