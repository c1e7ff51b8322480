import { tendPool } from "../../reaper/pool-pass.js";
import { TokenKeyring } from "../../shared/actions/token-keyring.js";
import { loadHandlerConfig } from "../../shared/config/load.js";
import { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import { adminKubeConfig } from "./cluster.js";
import { LogCapture } from "./fleet.js";

/**
 * The reaper's pool pass over a namespace, as `fleet-reaper` runs it with the handler's
 * settings `env` (the same ConfigMap): tops the pool up to `poolSize` members.
 */
export async function poolPass(namespace: string, env: Record<string, string>, poolSize: number) {
  const config = loadHandlerConfig({
    env: { NAMESPACE: namespace, CLIENT_AUTH: "open", ...env },
    readFile: () => "",
  });
  const kube = new Kube(adminKubeConfig(), namespace);
  const logs = new LogCapture();
  try {
    return await tendPool(kube, {
      poolSize,
      member: { podTemplate: config.podTemplate, resources: config, workspaces: config.workspaces },
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
