import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { kubectl } from "./kubectl.js";

const ROOT = resolve(import.meta.dirname, "../..");

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

/**
 * Integration tests run against a real control plane: FLEET_TEST_KUBECONFIG names an
 * existing cluster, otherwise the project's own local cluster is started (or reused).
 */
export default function setup(project: TestProject) {
  // Some tests run the built binaries as real processes (signals, ports, exit codes).
  const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) throw new Error("npm run build failed (see the output above)");

  let kubeconfig = process.env.FLEET_TEST_KUBECONFIG;
  if (kubeconfig) {
    if (!existsSync(kubeconfig)) throw new Error(`FLEET_TEST_KUBECONFIG: no file at ${kubeconfig}`);
  } else {
    const up = spawnSync("bash", [resolve(ROOT, "scripts/cluster.sh"), "up"], { stdio: "inherit" });
    if (up.status !== 0)
      throw new Error("the local control plane did not start (see the output above)");
    kubeconfig = resolve(ROOT, ".cluster/kubeconfig");
  }
  // Traefik, for the end-to-end test of the public route (built once, cached like the cluster).
  const traefik = spawnSync("bash", [resolve(ROOT, "scripts/cluster-build.sh"), "traefik"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (traefik.status !== 0) throw new Error("building Traefik failed (see the output above)");
  // The real gptme-server that tests run behind KWOK pods' loopback IPs (installed once, cached).
  const gptme = spawnSync("bash", [resolve(ROOT, "scripts/gptme-server.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (gptme.status !== 0) throw new Error("installing gptme-server failed (see the output above)");
  project.provide("gptmeServer", gptme.stdout.trim());
  // The fleet's CRD, and Traefik's (the fleet's manifests include a Middleware and an IngressRoute).
  for (const crds of [
    "k8s/local/fleet-operator/01-crd-clientpods.yaml",
    "k8s/local/traefik/00-crds.yaml",
  ]) {
    kubectl(kubeconfig, ["apply", "--server-side", "--force-conflicts", "-f", resolve(ROOT, crds)]);
  }
  kubectl(kubeconfig, ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  project.provide("kubeconfig", kubeconfig);
}
