import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeconfigPath } from "./cluster.js";
import { serviceAccountKubeConfig } from "./credentials.js";
import { kubectl } from "./kubectl.js";

const MANIFESTS = resolve(import.meta.dirname, "../../k8s/local/fleet-operator");

/**
 * The fleet's own ServiceAccount, Role and RoleBinding (`03-rbac-handler.yaml` or
 * `04-rbac-reaper.yaml`, exactly as shipped) installed in a test namespace, and credentials
 * of that ServiceAccount: a test then runs with the rights the manifests grant, without
 * touching the shared gptme-fleet namespace.
 */
export async function fleetServiceAccount(
  namespace: string,
  who: "fleet-handler" | "fleet-reaper",
): Promise<KubeConfig> {
  const file = who === "fleet-handler" ? "03-rbac-handler.yaml" : "04-rbac-reaper.yaml";
  const manifest = readFileSync(resolve(MANIFESTS, file), "utf8").replaceAll(
    "namespace: gptme-fleet",
    `namespace: ${namespace}`,
  );
  kubectl(kubeconfigPath(), ["apply", "-f", "-"], manifest);
  return serviceAccountKubeConfig(namespace, who);
}
