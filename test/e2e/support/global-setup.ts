import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { kubectl } from "../../support/kubectl.js";
import { freePort } from "../../support/process.js";

const ROOT = resolve(import.meta.dirname, "../../..");
const NAMESPACE = "gptme-fleet";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    traefikUrl: string;
    adminToken: string;
  }
}

function run(what: string, command: string, args: string[]): void {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) throw new Error(`${what} failed (see the output above)`);
  console.error(`[e2e] ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * The fleet as a user deploys it, on the local cluster's real node: the images built from
 * the repo's Dockerfiles (rebuilt from the current code each run; unchanged layers are
 * cached), `kubectl apply -k k8s/overlays/real-node`, and a Traefik on this machine reading
 * the fleet's IngressRoute in front of the handler's pods.
 */
export default async function setup(project: TestProject) {
  if (process.getuid?.() !== 0)
    throw new Error(
      "the e2e suite runs a real node (containers, bridge, iptables): run it as root",
    );
  const kubeconfig = resolve(ROOT, ".cluster/kubeconfig");
  const k = (args: string[], input?: string) => kubectl(kubeconfig, args, input);

  run("the cluster with its real node", "bash", ["scripts/cluster.sh", "up", "--real-node"]);
  run("images from the Dockerfiles", "bash", [
    "scripts/real-node-images.sh",
    "handler",
    "reaper",
    "gptme-server",
  ]);
  run("images into the node's containerd", "bash", ["scripts/real-node.sh", "images"]);
  run("Traefik (built once)", "bash", ["scripts/cluster-build.sh", "traefik"]);

  k(["apply", "--server-side", "--force-conflicts", "-f", "k8s/local/traefik/00-crds.yaml"]);
  k(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  // Instances left by an earlier run would count against the tests' limits.
  const existed = k(["get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"]);
  if (existed) k(["delete", "clientpods", "-n", NAMESPACE, "--all", "--wait=true"]);
  k(["apply", "-k", "k8s/overlays/real-node"]);
  const adminToken = randomBytes(16).toString("hex");
  k(["delete", "secret", "fleet-secrets", "-n", NAMESPACE, "--ignore-not-found"]);
  k([
    "create",
    "secret",
    "generic",
    "fleet-secrets",
    "-n",
    NAMESPACE,
    `--from-literal=ADMIN_TOKEN=${adminToken}`,
  ]);
  // New images under the same tag, and the new secret: the pods must be replaced to use them.
  k(["rollout", "restart", "deployment/fleet-handler", "-n", NAMESPACE]);
  const rollout = Date.now();
  k(["rollout", "status", "deployment/fleet-handler", "-n", NAMESPACE, "--timeout=300s"]);
  console.error(`[e2e] handler rollout: ${((Date.now() - rollout) / 1000).toFixed(1)} s`);
  await quotaCounted(k);

  const port = await freePort();
  const traefikUrl = `http://127.0.0.1:${port}`;
  const traefik = startTraefik(port, kubeconfig);
  await routed(traefikUrl, traefik);

  project.provide("kubeconfig", kubeconfig);
  project.provide("traefikUrl", traefikUrl);
  project.provide("adminToken", adminToken);
  return () => {
    traefik.proc.kill("SIGTERM");
    // The fleet's namespace back as the integration tests expect it on this cluster: absent
    // (they apply the base manifests there, and would find this overlay's objects).
    k(["delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s"]);
  };
}

/** A fresh ResourceQuota refuses ClientPods until the quota controller has counted them. */
async function quotaCounted(k: (args: string[]) => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  const path = "{.status.used.count/clientpods\\.gptme\\.ai}";
  while (
    !k(["get", "resourcequota", "fleet-instances", "-n", NAMESPACE, "-o", `jsonpath=${path}`])
  ) {
    if (Date.now() > deadline) throw new Error("the quota controller never counted ClientPods");
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function startTraefik(port: number, kubeconfig: string): { proc: ChildProcess; log: string[] } {
  const log: string[] = [];
  const proc = spawn("bash", [resolve(ROOT, "scripts/traefik.sh"), String(port), NAMESPACE], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (d) => log.push(String(d)));
  proc.stderr?.on("data", (d) => log.push(String(d)));
  return { proc, log };
}

/** Traefik is ready once the public route answers from a handler pod. */
async function routed(base: string, traefik: { log: string[] }): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    // A key too short to be one: the handler answers 400 and creates nothing.
    const res = await fetch(`${base}/api/v1/x/instances/probe`).catch(() => undefined);
    if (res?.status === 400) return;
    if (Date.now() > deadline)
      throw new Error(`Traefik did not route in time:\n${traefik.log.join("")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
