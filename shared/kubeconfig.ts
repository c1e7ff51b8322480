import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "./config.js";

/**
 * The Kubernetes credentials: `KUBECONFIG` (or ~/.kube/config) for development, the pod's
 * service account when deployed. Unlike KubeConfig.loadFromDefault(), it never falls back
 * to http://localhost:8080: with no credentials at all the process stops with a clear error.
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  const homeConfig = join(homedir(), ".kube", "config");
  if (env.KUBECONFIG) {
    const missing = env.KUBECONFIG.split(":").filter((path) => path && !existsSync(path));
    if (missing.length > 0) throw new ConfigError(`KUBECONFIG: no file at ${missing.join(", ")}`);
    kc.loadFromDefault();
  } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
    kc.loadFromCluster();
  } else if (existsSync(homeConfig)) {
    kc.loadFromFile(homeConfig);
  } else {
    throw new ConfigError(
      "KUBECONFIG: not set, not running in a cluster, and no ~/.kube/config (for the local control plane: KUBECONFIG=.cluster/kubeconfig)",
    );
  }
  if (!kc.getCurrentCluster())
    throw new ConfigError("KUBECONFIG: the current context names no cluster");
  return kc;
}
