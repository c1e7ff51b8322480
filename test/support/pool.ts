import { readFileSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import { tendPool } from "../../reaper/pool-pass.js";
import { TokenKeyring } from "../../shared/actions/token-keyring.js";
import { loadHandlerConfig } from "../../shared/config/load.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import { adminKubeConfig } from "./cluster.js";
import { LogCapture } from "./fleet.js";

/**
 * The reaper's pool pass over a namespace, as `fleet-reaper` runs it with the handler's
 * settings `env` (the same ConfigMap): tops each plan's pool up, `poolSize` members being
 * POOL_SIZE (the default plan's, or every plan's that PLANS_FILE leaves without its own).
 */
export async function poolPass(
  namespace: string,
  env: Record<string, string>,
  poolSize: number,
  kc: KubeConfig = adminKubeConfig(),
) {
  const config = loadHandlerConfig({
    env: { NAMESPACE: namespace, CLIENT_AUTH: "open", ...env, POOL_SIZE: String(poolSize) },
    readFile: (path) => readFileSync(path, "utf8"),
  });
  const kube = new Kube(credentialsOf(kc), namespace);
  const logs = new LogCapture();
  try {
    return await tendPool(kube, {
      plans: config.plans.current(),
      member: { resources: config, workspaces: config.workspaces },
      keyring: new TokenKeyring(config.instanceTokenKeys, kube, 10_000),
      concurrency: 4,
      dryRun: false,
      now: () => new Date(),
      log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
    });
  } finally {
    kube.close();
  }
}
