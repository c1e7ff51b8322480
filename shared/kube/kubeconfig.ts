import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "../config/load.js";

/**
 * The Kubernetes credentials: `KUBECONFIG` (or ~/.kube/config) for development, the pod's
 * service account when deployed. Unlike KubeConfig.loadFromDefault(), it never falls back
 * to http://localhost:8080: with no credentials at all the process stops with a clear error.
 * Reads the environment (client-node's in-cluster loader reads it too).
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const { KUBECONFIG, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT } = process.env;
  const homeConfig = join(homedir(), ".kube", "config");
  if (KUBECONFIG) {
    const paths = KUBECONFIG.split(":").filter(Boolean);
    const missing = paths.filter((path) => !existsSync(path));
    if (missing.length > 0) throw new ConfigError(`KUBECONFIG: no file at ${missing.join(", ")}`);
    // Several files merge as kubectl merges them: the first one's current context wins.
    kc.loadFromFile(paths[0] ?? "");
    for (const path of paths.slice(1)) {
      const next = new KubeConfig();
      next.loadFromFile(path);
      kc.mergeConfig(next, true);
    }
  } else if (KUBERNETES_SERVICE_HOST && KUBERNETES_SERVICE_PORT) {
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
