import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { inject } from "vitest";
import { eventually as pollUntil } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";

const ROOT = resolve(import.meta.dirname, "../../..");
export const NAMESPACE = "gptme-fleet";

/** The real node's addresses, from the script that sets them up. */
function nodeSetting(name: string): string {
  const env = readFileSync(resolve(ROOT, "scripts/real-node-env.sh"), "utf8");
  const value = new RegExp(`^${name}=(?:\\$\\{[A-Z_]+:-)?([^}\\s]+)`, "m").exec(env)?.[1];
  if (!value) throw new Error(`${name} not found in scripts/real-node-env.sh`);
  return value;
}
export const NODE_NAME = nodeSetting("REAL_NODE_NAME");
export const HOST_IP = nodeSetting("REAL_NODE_HOST_IP");
export const API_SERVICE_IP = nodeSetting("REAL_NODE_API_SERVICE_IP");
const POD_CIDR = nodeSetting("REAL_NODE_POD_CIDR");

/** Whether an address is on the real node's pod network (a /24). */
export function onPodNetwork(ip: string | undefined): boolean {
  const prefix = POD_CIDR.split(".").slice(0, 3).join(".");
  return !!ip && ip.startsWith(`${prefix}.`) && ip !== HOST_IP;
}

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return kc;
}
export const core = () => kubeConfig().makeApiClient(CoreV1Api);
export const apps = () => kubeConfig().makeApiClient(AppsV1Api);

export const k = (args: string[], input?: string): string =>
  kubectl(inject("kubeconfig"), args, input);

/** Lets an instance idle for one second only, and waits until it has expired. */
export async function expire(name: string): Promise<void> {
  k([
    "patch",
    "clientpod",
    name,
    "-n",
    NAMESPACE,
    "--type=merge",
    "-p",
    '{"spec":{"idleTimeoutSeconds":1}}',
  ]);
  await new Promise((r) => setTimeout(r, 2_000));
}

/**
 * Runs the reaper exactly as an operator does by hand (a Job from its CronJob: its image,
 * its ServiceAccount) and waits for it to complete; the Job's name and its JSON log lines.
 * The caller deletes the Job.
 */
export function runReaperJob(prefix: string): { job: string; lines: Body[] } {
  const job = `${prefix}-${randomBytes(3).toString("hex")}`;
  k(["create", "job", "-n", NAMESPACE, "--from=cronjob/fleet-reaper", job]);
  k(["wait", "-n", NAMESPACE, "--for=condition=Complete", `job/${job}`, "--timeout=150s"]);
  const lines = k(["logs", "-n", NAMESPACE, `job/${job}`])
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  return { job, lines };
}

/** The API server's port on loopback, which the pods reach through the bridge. */
export function apiServerPort(): number {
  return Number(
    k(["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"]).split(":").at(-1),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: tests read the instance body field by field
export type Body = any;

/** GET the public route through Traefik, as a client does. */
export async function getInstance(
  apiKey: string,
  instanceId: string,
  wait = 60,
): Promise<{ status: number; body: Body }> {
  const res = await fetch(
    `${inject("traefikUrl")}/api/v1/${encodeURIComponent(apiKey)}/instances/${instanceId}?wait=${wait}`,
  );
  return { status: res.status, body: await res.json() };
}

/**
 * An instance's Pod name: the last segment of its gateway path. A new instance handed out
 * from the warm pool keeps the member's Pod (and its name); others' Pods have the instance's.
 */
// biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
export const podNameOf = (body: any): string => String(body.endpoint.path).split("/").pop() ?? "";

/** Deletes an instance through the handler's admin API (its ClientPod, and so its Pod). */
export async function deleteInstance(name: string): Promise<void> {
  const pod = (await handlerPods())[0];
  if (!pod?.status?.podIP) throw new Error("no handler pod to ask");
  const res = await fetch(`http://${pod.status.podIP}:8080/admin/pods/${name}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${inject("adminToken")}` },
  });
  if (res.status !== 200 && res.status !== 404) throw new Error(`DELETE ${name}: ${res.status}`);
}

export async function handlerPods(): Promise<V1Pod[]> {
  const list = await core().listNamespacedPod({
    namespace: NAMESPACE,
    labelSelector: "app.kubernetes.io/name=fleet-handler",
  });
  return list.items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
}

export async function readPod(name: string): Promise<V1Pod | undefined> {
  return core()
    .readNamespacedPod({ name, namespace: NAMESPACE })
    .catch(() => undefined);
}

/** Runs a command in a pod's container (through the API server and the node's kubelet). */
export function exec(pod: string, container: string, argv: string[]): string {
  return k(["exec", "-n", NAMESPACE, pod, "-c", container, "--", ...argv]);
}

/** "open" or "blocked": a TCP connection attempt from inside a gptme-server pod (Python). */
export function connectFromClient(pod: string, host: string, port: number): string {
  const script = [
    "import socket, sys",
    "s = socket.socket(); s.settimeout(3)",
    "try:",
    "    s.connect((sys.argv[1], int(sys.argv[2]))); print('open')",
    "except OSError as e:",
    "    print('blocked', type(e).__name__)",
  ].join("\n");
  return exec(pod, "gptme-server", ["python3", "-c", script, host, String(port)]).trim();
}

/** "open" or "blocked": a TCP connection attempt from inside a handler pod (Node). */
export function connectFromHandler(pod: string, host: string, port: number): string {
  const script = `const s = require("node:net").connect(Number(process.argv[2]), process.argv[1]);
s.setTimeout(3000);
s.on("connect", () => { console.log("open"); process.exit(0); });
s.on("timeout", () => { console.log("blocked timeout"); process.exit(0); });
s.on("error", (e) => { console.log("blocked " + e.code); process.exit(0); });`;
  return exec(pod, "handler", ["node", "-e", script, host, String(port)]).trim();
}

function containerProcs(pod: V1Pod): string[] {
  const id = pod.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "");
  if (!id) throw new Error(`no container in ${pod.metadata?.name}`);
  return findCgroupProcs("/sys/fs/cgroup/pids/kubepods", id);
}

/** When a process started (epoch ms, to about 10 ms), from the kernel's own record. */
function processStartedAt(pid: string): number {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  // Field 22 of /proc/<pid>/stat, counted after the command name in parentheses.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Date.now() - uptimeMs + (Number(fields[19]) / ticksPerSecond) * 1000;
}

/**
 * When the pod's sandbox ("pause") and its first container's process were started, from
 * the kernel: the API's timestamps carry whole seconds only, and its status lags.
 */
export function podStartedAt(pod: V1Pod): { sandbox: number; container: number } {
  const uid = pod.metadata?.uid ?? "";
  const app = pod.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "");
  const podDir = findCgroupDir("/sys/fs/cgroup/pids/kubepods", `pod${uid}`);
  if (!podDir || !app) throw new Error(`no cgroup for ${pod.metadata?.name}`);
  const startOf = (dir: string) =>
    Math.min(
      ...readFileSync(resolve(dir, "cgroup.procs"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map(processStartedAt),
    );
  const children = readdirSync(podDir, { withFileTypes: true }).filter((e) => e.isDirectory());
  const sandbox = children.find((e) => e.name !== app);
  return {
    sandbox: sandbox ? startOf(resolve(podDir, sandbox.name)) : Number.NaN,
    container: startOf(resolve(podDir, app)),
  };
}

/** SIGKILL to every process of a container, from the host: a crash, not a shutdown. */
export function killContainer(pod: V1Pod): void {
  const procs = containerProcs(pod);
  if (procs.length === 0) throw new Error(`no process in ${pod.metadata?.name}`);
  execFileSync("kill", ["-9", ...procs]);
}

function findCgroupDir(dir: string, name: string): string | undefined {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = resolve(dir, entry.name);
    if (entry.name === name) return path;
    const found = findCgroupDir(path, name);
    if (found) return found;
  }
  return undefined;
}

function findCgroupProcs(dir: string, id: string): string[] {
  const found = findCgroupDir(dir, id);
  return found
    ? readFileSync(resolve(found, "cgroup.procs"), "utf8").split("\n").filter(Boolean)
    : [];
}

/** The integration suite's poll, with the longer bounds real containers need. */
export const eventually = <T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> => pollUntil(probe, what, timeoutMs, intervalMs);

/**
 * Changes the handler's Deployment (`change`) and waits until only the new handler pods
 * serve: `rollout status` returns once the new pods are available, while the old ones may
 * still answer requests through Traefik as they drain.
 */
export function rollHandlers(change: () => void): void {
  const old = k([
    "get",
    "pods",
    "-n",
    NAMESPACE,
    "-l",
    "app.kubernetes.io/name=fleet-handler",
    "-o",
    "name",
  ])
    .split("\n")
    .filter(Boolean);
  change();
  k(["rollout", "status", "-n", NAMESPACE, "deployment/fleet-handler", "--timeout=300s"]);
  if (old.length > 0) {
    k(["wait", "--for=delete", "-n", NAMESPACE, "--timeout=120s", ...old]);
  }
}

/** Sets (`NAME=value`) or removes (`NAME-`) a variable of the handler's Deployment: rollHandlers. */
export function setHandlerEnv(change: string): void {
  rollHandlers(() => k(["set", "env", "-n", NAMESPACE, "deployment/fleet-handler", change]));
}

/** The handlers with the warm pool off until `restore` is called (cold starts to time). */
export function poolOff(): { restore: () => void } {
  setHandlerEnv("POOL_SIZE=0");
  return { restore: () => setHandlerEnv("POOL_SIZE-") };
}
