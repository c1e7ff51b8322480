import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { inject } from "vitest";
import { localEnvOf } from "../../scripts/lib/pod-mounts.js";
import { instancePortOf } from "../../shared/instance/pod-spec.js";
import { adminKubeConfig } from "./cluster.js";

declare module "vitest" {
  export interface ProvidedContext {
    gptmeServer: string;
  }
}

/** A real gptme-server process (PyPI's, version pinned by scripts/gptme-server.sh). */
export interface GptmeServer {
  url: string;
  token: string;
  proc: ChildProcess;
  log: string[];
  stop(): Promise<void>;
}

/**
 * Refuses any address this machine does not own: KWOK's default pod IPs (10.x) belong to
 * nothing, and no test may send a packet to them. The local cluster's nodes have loopback
 * pod CIDRs (scripts/cluster.sh), so every pod IP is 127.x.
 */
export function assertLocal(host: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host)) {
    throw new Error(`refusing to use ${host}: tests reach only loopback pod IPs`);
  }
}

/**
 * Starts gptme-server bound to exactly host:port, as the pod's container would run it;
 * `env` adds to its environment (a model provider's base URL, say).
 */
export async function startGptmeServer(
  host: string,
  port: number,
  token: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<GptmeServer> {
  assertLocal(host);
  // A pod IP is reused once its pod is gone. A server still running for an earlier pod at
  // the same address would answer the health check below in place of this one (and refuse
  // this one's token): as a kubelet stops a deleted pod's containers, the test must.
  if (await isListening(host, port)) {
    throw new Error(`${host}:${port} is taken: stop the server of the pod that had it first`);
  }
  const home = mkdtempSync(join(tmpdir(), "gptme-home-"));
  const proc = spawn(
    inject("gptmeServer"),
    ["serve", "--host", host, "--port", String(port), ...extraArgs],
    {
      // One unwrapped, uncoloured line per access-log entry, so tests can read what it saw.
      env: {
        PATH: process.env.PATH,
        HOME: home,
        GPTME_SERVER_TOKEN: token,
        COLUMNS: "1000",
        NO_COLOR: "1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const log: string[] = [];
  for (const stream of [proc.stdout, proc.stderr]) stream?.on("data", (d) => log.push(String(d)));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const url = `http://${host}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const health = await fetch(`${url}/api/v2/server/health`).catch(() => undefined);
    if (health?.ok) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`gptme-server did not start at ${url}:\n${log.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    token,
    proc,
    log,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Does for a KWOK pod what a kubelet would: reads the Pod, resolves its GPTME_SERVER_TOKEN
 * from the Secret it references, mounts its volumes (its workspace claim's directory, see
 * localEnvOf) and runs gptme-server at the pod's IP and `http` port. `env` adds to (and
 * overrides) the container's own environment.
 */
export async function runInstancePod(
  namespace: string,
  name: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<GptmeServer> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const ip = await podIpOf(namespace, name);
  const pod = await core.readNamespacedPod({ name, namespace });
  const container = pod.spec?.containers.find((c) => c.ports?.some((p) => p.name === "http"));
  const ref = container?.env?.find((e) => e.name === "GPTME_SERVER_TOKEN")?.valueFrom?.secretKeyRef;
  if (!ref?.name || !ref.key) throw new Error(`pod ${name} takes no token from a Secret`);
  const secret = await core.readNamespacedSecret({ name: ref.name, namespace });
  const token = Buffer.from(secret.data?.[ref.key] ?? "", "base64").toString("utf8");
  const mounted = container ? await localEnvOf(core, pod, container) : {};
  return startGptmeServer(ip, instancePortOf(pod), token, extraArgs, { ...mounted, ...env });
}

/** gptme-server's own count of the requests it answered, per endpoint (its Prometheus metrics). */
export async function requestsSeen(server: GptmeServer, endpoint: string): Promise<number> {
  const text = await (await fetch(`${server.url}/api/v0/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (
      line.startsWith("gptme_server_requests_total{") &&
      line.includes(`endpoint="${endpoint}"`)
    ) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

/** Reads a server-sent event stream, frame by frame, with arrival times. */
export class EventStream {
  readonly events: { data: unknown; at: number }[] = [];
  private buffer = "";
  private waiters: (() => void)[] = [];

  constructor(readonly response: Response) {
    void this.pump();
  }

  private async pump(): Promise<void> {
    const reader = this.response.body?.getReader();
    if (!reader) return;
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        let end = this.buffer.indexOf("\n\n");
        while (end !== -1) {
          const frame = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          const data = frame.split("\n").find((l) => l.startsWith("data: "));
          if (data) this.events.push({ data: JSON.parse(data.slice(6)), at: performance.now() });
          end = this.buffer.indexOf("\n\n");
        }
        for (const wake of this.waiters.splice(0)) wake();
      }
    } catch {
      // Aborted by the test.
    }
  }

  /** The first event (from now on or already seen) that matches, within `timeoutMs`. */
  async next(
    match: (data: { type?: string }) => boolean,
    timeoutMs = 15_000,
  ): Promise<{ data: unknown; at: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => match(e.data as { type?: string }));
      if (found) return found;
      if (Date.now() > deadline) throw new Error("no matching event in time");
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

/** Waits until the Pod has an IP (KWOK gives one within moments of scheduling). */
export async function podIpOf(
  namespace: string,
  name: string,
  timeoutMs = 30_000,
): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pod = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    const ip = pod?.status?.podIP;
    if (ip) return ip;
    if (Date.now() > deadline) throw new Error(`pod ${name} got no IP within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A new instance as a client starts it, with the real gptme-server its container would run:
 * `request(wait=0)` creates it (202: its server is not up yet), then the server starts at the
 * pod's IP as a kubelet would start it, then `request(wait=S)` returns the ready answer. The
 * fleet calls an instance ready only once its gptme-server answers, so a test that needs one
 * ready runs the server first.
 */
export async function startInstanceWithServer(
  namespace: string,
  request: (wait: number) => Promise<Response>,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
): Promise<{ instance: any; server: GptmeServer }> {
  const started = await request(0);
  const { name } = (await started.json()) as { name: string };
  const server = await runInstancePod(namespace, name, extraArgs, env);
  const ready = await request(30);
  const instance = await ready.json();
  if (ready.status !== 200) {
    await server.stop();
    throw new Error(`instance ${name} answered ${ready.status} with its server up`);
  }
  return { instance, server };
}
