import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { installFleetQuota as installQuota } from "../lib/fleet-quota.js";
import { answerPodHealth, type PodHealth } from "../lib/pod-health.js";

export const ROOT = resolve(import.meta.dirname, "../../..");
export const KUBECONFIG = process.env.KUBECONFIG ?? resolve(ROOT, ".cluster/kubeconfig");

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  return kc;
}

export function say(text: string): void {
  process.stderr.write(`[bench] ${text}\n`);
}

export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name, labels: { "gptme.ai/bench": "true" } } },
  });
  // Pods are refused until the controller-manager has made the namespace's default
  // ServiceAccount (moments later; seconds on a busy machine).
  for (let i = 0; i < 600; i++) {
    const made = await core.readNamespacedServiceAccount({ name: "default", namespace: name }).then(
      () => true,
      () => false,
    );
    if (made) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return name;
}

/** scripts/lib/fleet-quota.ts against the bench's cluster. */
export const installFleetQuota = (namespace: string, hard: number): Promise<void> =>
  installQuota(adminKubeConfig().makeApiClient(CoreV1Api), namespace, hard);

/** Deletes a namespace and waits until it is gone, so the next section starts clean. */
export async function deleteNamespace(name: string): Promise<void> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await core.deleteNamespace({ name }).catch(() => undefined);
  for (let i = 0; i < 600; i++) {
    const gone = await core.readNamespace({ name }).then(
      () => false,
      () => true,
    );
    if (gone) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function adminKube(namespace: string): Kube {
  return new Kube(credentialsOf(adminKubeConfig()), namespace);
}

/**
 * The load generator's HTTP client: node:http with one keep-alive agent. Everything shares
 * this machine's 2 cores, so the load generator's CPU is taken from the system under test:
 * fetch (undici) cost 0.7-0.9 ms of CPU per request here, this 0.2-0.3 ms.
 */
const loadAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function httpGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return httpRequest(url, { headers });
}

export function httpRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  // A known length, as browsers send: without it Node streams a POST chunked.
  const headers =
    init.body === undefined
      ? init.headers
      : { ...init.headers, "content-length": String(Buffer.byteLength(init.body)) };
  return new Promise((resolve, reject) => {
    const method = init.method ?? "GET";
    const request = http.request(url, { agent: loadAgent, method, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("error", reject);
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end(init.body);
  });
}

export function machine(): string {
  const kernel = execFileSync("uname", ["-sr"], { encoding: "utf8" }).trim();
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const handler = [
    HANDLER_NODE === process.execPath ? "" : `Node ${HANDLER_NODE_VERSION}`,
    ...HANDLER_NODE_ARGS,
  ].filter(Boolean);
  const flags = handler.length ? ` (handler: ${handler.join(" ")})` : "";
  return `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${kernel}, Node ${process.version}${flags}`;
}

export interface BenchHandler {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Node flags for every handler a benchmark starts (BENCH_HANDLER_NODE_ARGS, separated by
 * spaces, e.g. `--max-old-space-size=128 --max-semi-space-size=4`): what production's
 * Dockerfile.handler runs it with, or a candidate for it. Unset: Node's defaults, sized from
 * this machine's memory.
 */
export const HANDLER_NODE_ARGS = (process.env.BENCH_HANDLER_NODE_ARGS ?? "")
  .split(" ")
  .filter(Boolean);
/**
 * The Node binary every handler a benchmark starts runs on (BENCH_HANDLER_NODE): this
 * process's by default; production's image has its own (Dockerfile.handler's NODE_VERSION).
 */
export const HANDLER_NODE = process.env.BENCH_HANDLER_NODE ?? process.execPath;
const HANDLER_NODE_VERSION =
  HANDLER_NODE === process.execPath
    ? process.version
    : execFileSync(HANDLER_NODE, ["--version"], { encoding: "utf8" }).trim();

/**
 * The built handler as a process, logging as in production (to /dev/null), with
 * HANDLER_NODE_ARGS and then `nodeArgs`.
 */
export async function startHandler(
  namespace: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<BenchHandler> {
  const { spawn } = await import("node:child_process");
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  const proc = spawn(
    HANDLER_NODE,
    [...HANDLER_NODE_ARGS, ...nodeArgs, resolve(ROOT, "dist/handler/main.js")],
    {
      env: {
        ...process.env,
        KUBECONFIG,
        NAMESPACE: namespace,
        HTTP_PORT: String(port),
        CLIENT_AUTH: "open",
        ...env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if ((await httpGet(`${url}/healthz`).catch(() => undefined))?.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise((r) => proc.on("exit", r));
  return {
    url,
    pid: proc.pid ?? 0,
    stop: async () => {
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** Resident set size of a process, from /proc. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

/**
 * CPU time a process has used so far (its utime + stime from /proc, all threads, in ms): what
 * a proxy costs per request, robust to whatever else the machine runs.
 */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may hold spaces: the fields after it start past its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}

/** The kernel's clock ticks per second (USER_HZ), as /proc counts CPU time. */
const CLOCK_TICKS =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** Sum of the handler's Kubernetes API calls, from its own /metrics. */
export async function apiCalls(url: string): Promise<number> {
  const text = (await httpGet(`${url}/metrics`)).body;
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("fleet_kubernetes_requests_total{"))
      total += Number(line.split(" ").at(-1));
  }
  return total;
}

export async function installTemplate(namespace: string): Promise<void> {
  const { loadYaml } = await import("@kubernetes/client-node");
  const template = loadYaml<{ metadata: { namespace?: string } }>(
    readFileSync(
      resolve(ROOT, "k8s/local/fleet-operator/05-podtemplate-gptme-client.yaml"),
      "utf8",
    ),
  );
  template.metadata.namespace = namespace;
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedPodTemplate({ namespace, body: template as never });
}

/**
 * Answers gptme-server's health check at every pod IP of the namespace (KWOK pods run no
 * containers, and the fleet calls an instance ready only once its server answers): the
 * cold, warm, storm, workspace and memory sections measure the fleet, not gptme-server.
 */
export function answerHealth(namespace: string): PodHealth {
  return answerPodHealth(adminKubeConfig().makeApiClient(CoreV1Api), namespace);
}

/** Waits until the Pod has an IP (KWOK gives one moments after scheduling). */
export async function podIpOf(namespace: string, name: string): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  for (let i = 0; i < 600; i++) {
    const pod = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    if (pod?.status?.podIP) return pod.status.podIP;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pod ${name} got no IP`);
}
