import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { join, resolve } from "node:path";
import { cpuMs, httpGet, podIpOf, ROOT } from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

// What the gateway and preview benchmarks share: processes to start, a Traefik on file
// routes as the anchor, and each path's latency, throughput and CPU per request.

/** A path's figures over its rounds; `cpuPer1000Ms` is the CPU its proxy process spent. */
export type PathStats = Stats & { rps: number; cpuPer1000Ms?: number };

/** Starts a process and waits until `ready` holds (or it exits, or a minute passes). */
export async function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
): Promise<ChildProcess> {
  const proc = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (d) => (output += d));
  proc.stderr?.on("data", (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (!(await ready().catch(() => false))) {
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`${command} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return proc;
}

/** Answers anything at `url` (a proxy in front of an upstream that is up). */
export const answers = (url: string) => async () =>
  (await httpGet(url).catch(() => ({ status: 0 }))).status > 0;

export function assertLocal(host: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host))
    throw new Error(`refusing to reach ${host}: loopback pod IPs only`);
}

/** An instance a proxy benchmark sends traffic to: its gateway endpoint and its pod's address. */
export interface ProxiedInstance {
  name: string;
  endpoint: { path: string; token: string };
  connection: { host: string; port: number };
}

/**
 * Makes an instance through the handler at `handlerUrl`, without waiting: the benchmark starts
 * its upstream at the pod IP (a loopback address, or it refuses), and the gateway's first
 * requests are held until that upstream answers (ready means it answers).
 */
export async function proxiedInstance(
  handlerUrl: string,
  namespace: string,
  apiKey: string,
  id: string,
): Promise<ProxiedInstance> {
  const { status, body } = await httpGet(`${handlerUrl}/instances/${id}?wait=0`, {
    "x-api-key": apiKey,
  });
  if (status !== 202 && status !== 200) throw new Error(`instance ${id}: ${status} ${body}`);
  const { name, endpoint } = JSON.parse(body) as Omit<ProxiedInstance, "connection">;
  const host = await podIpOf(namespace, name);
  assertLocal(host);
  return { name, endpoint, connection: { host, port: 5700 } };
}

export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A Traefik route: every request to its own entry point goes to `upstream`, with a path prefix added. */
export interface TraefikRoute {
  name: string;
  upstream: string;
  addPrefix?: string;
}

/**
 * A real Traefik v3.6 (the locally built binary; file provider, access log off, log level
 * ERROR), one entry point per route; resolves with each route's port.
 */
export async function startTraefik(
  routes: TraefikRoute[],
): Promise<{ proc: ChildProcess; ports: Record<string, number> }> {
  const dir = resolve(ROOT, ".bench/traefik");
  mkdirSync(dir, { recursive: true });
  const ports: Record<string, number> = {};
  for (const route of routes) ports[route.name] = await freePort();
  const routers = routes
    .map(
      (r) =>
        `    ${r.name}: {rule: "PathPrefix(\`/\`)", service: ${r.name}, entryPoints: [${r.name}]${r.addPrefix ? `, middlewares: [${r.name}-prefix]` : ""}}`,
    )
    .join("\n");
  const services = routes
    .map((r) => `    ${r.name}: {loadBalancer: {servers: [{url: "${r.upstream}"}]}}`)
    .join("\n");
  const middlewares = routes
    .filter((r) => r.addPrefix)
    .map((r) => `    ${r.name}-prefix: {addPrefix: {prefix: "${r.addPrefix}"}}`)
    .join("\n");
  const file = join(dir, `dynamic-${process.pid}.yaml`);
  writeFileSync(
    file,
    `http:\n  routers:\n${routers}\n  services:\n${services}\n${middlewares ? `  middlewares:\n${middlewares}\n` : ""}`,
  );
  const bin = execFileSync(
    "bash",
    [
      "-c",
      `source ${resolve(ROOT, "scripts/cluster-env.sh")}; echo "$BIN_DIR/traefik-v$TRAEFIK_VERSION"`,
    ],
    { encoding: "utf8" },
  ).trim();
  const proc = await startProcess(
    bin,
    [
      ...routes.map((r) => `--entryPoints.${r.name}.address=127.0.0.1:${ports[r.name]}`),
      `--providers.file.filename=${file}`,
      "--log.level=ERROR",
    ],
    {},
    // Traefik answers 404 until its file provider has loaded the routes.
    async () => {
      for (const r of routes) {
        if ((await httpGet(`http://127.0.0.1:${ports[r.name]}/`)).status === 404) return false;
      }
      return true;
    },
  );
  return { proc, ports };
}

/** One path of a benchmark: where to send GETs, and which process proxies them (its CPU is counted). */
export interface LoadPath {
  url: string;
  headers: Record<string, string>;
  pid?: number;
}

/** Latencies, wall time and the proxy's CPU of a path over several runs. */
export class Pooled {
  private readonly latencies: number[] = [];
  private seconds = 0;
  private cpu = 0;
  private counted = 0;

  /** A closed loop of `requests` GETs at `concurrency`, each answered 200. */
  async run(path: LoadPath, requests: number, concurrency: number): Promise<void> {
    const before = path.pid ? cpuMs(path.pid) : 0;
    const run = await closedLoop(requests, concurrency, async () => {
      const { status } = await httpGet(path.url, path.headers);
      if (status !== 200) throw new Error(`${path.url} answered ${status}`);
    });
    if (path.pid) {
      this.cpu += cpuMs(path.pid) - before;
      this.counted += requests;
    }
    this.latencies.push(...run.latencies);
    this.seconds += run.seconds;
  }

  summary(): PathStats {
    return {
      ...stats(this.latencies),
      rps: this.latencies.length / this.seconds,
      cpuPer1000Ms: this.counted ? (this.cpu / this.counted) * 1000 : undefined,
    };
  }
}

/** Requests sent along each path before anything is measured. */
export const WARM_UP = 2_000;

/**
 * Every path at each concurrency, `rounds` rounds with the order rotated (so no path always
 * runs first or after the same neighbour); `requestsOf` says how many GETs a path gets per round.
 */
export async function measureLevels<P extends string>(
  paths: Record<P, LoadPath>,
  levels: number[],
  rounds: number,
  requestsOf: (path: P) => number,
  onLevel: (concurrency: number, level: Record<P, PathStats>) => void = () => undefined,
): Promise<({ concurrency: number } & Record<P, PathStats>)[]> {
  const order = Object.keys(paths) as P[];
  // Warm, as a replica that has been serving is: the JIT's work is done before measuring.
  for (const p of order) await new Pooled().run(paths[p], WARM_UP, 4);
  const results: ({ concurrency: number } & Record<P, PathStats>)[] = [];
  for (const concurrency of levels) {
    const pooled = Object.fromEntries(order.map((p) => [p, new Pooled()])) as Record<P, Pooled>;
    for (let round = 0; round < rounds; round++) {
      const rotated = [
        ...order.slice(round % order.length),
        ...order.slice(0, round % order.length),
      ];
      for (const p of rotated) await pooled[p].run(paths[p], requestsOf(p), concurrency);
    }
    const level = Object.fromEntries(order.map((p) => [p, pooled[p].summary()])) as Record<
      P,
      PathStats
    >;
    onLevel(concurrency, level);
    results.push({ concurrency, ...level });
  }
  return results;
}
