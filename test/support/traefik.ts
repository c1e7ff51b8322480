import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CoreV1Api, KubernetesObjectApi, loadAllYaml } from "@kubernetes/client-node";
import { adminKubeConfig, kubeconfigPath } from "./cluster.js";

const ROOT = resolve(import.meta.dirname, "../..");

export interface TestTraefik {
  /** Where clients reach it: http://127.0.0.1:<port> */
  url: string;
  log(): string;
  stop(): void;
}

/**
 * A real Traefik (built from source like the control plane) on `port`, routing with the
 * repo's own Middleware and IngressRoutes, moved into `namespace`, to a handler on this
 * machine at `handlerPort` (the fleet-handler Service stands for the Deployment). Resolves
 * once `probePath` is routed (answers anything but 404). `files`: the route manifests of
 * k8s/local/fleet-operator/ to serve.
 */
export async function startTraefik(
  namespace: string,
  port: number,
  handlerPort: number,
  probePath: string,
  files: string[] = ["09-traefik-route.yaml"],
): Promise<TestTraefik> {
  const api = KubernetesObjectApi.makeApiClient(adminKubeConfig());
  for (const file of files) {
    const objects = loadAllYaml(
      readFileSync(resolve(ROOT, "k8s/local/fleet-operator", file), "utf8"),
    );
    for (const object of objects) {
      await api.create({ ...object, metadata: { ...object.metadata, namespace } });
    }
  }
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedService({
      namespace,
      body: {
        metadata: { name: "fleet-handler" },
        spec: {
          type: "ExternalName",
          externalName: "localhost",
          ports: [{ name: "http", port: handlerPort }],
        },
      },
    });
  const url = `http://127.0.0.1:${port}`;
  let log = "";
  const proc: ChildProcess = spawn(
    "bash",
    [resolve(ROOT, "scripts/traefik.sh"), String(port), namespace],
    {
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  proc.stdout?.on("data", (d) => (log += d));
  proc.stderr?.on("data", (d) => (log += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${url}${probePath}`).catch(() => undefined);
    if (res && res.status !== 404) break;
    if (Date.now() > deadline) {
      proc.kill("SIGTERM");
      throw new Error(`Traefik did not route in time:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, log: () => log, stop: () => proc.kill("SIGTERM") };
}
