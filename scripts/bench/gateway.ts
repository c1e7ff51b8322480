import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import {
  adminKubeConfig,
  apiCalls,
  closedLoop,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  podIpOf,
  ROOT,
  rssMb,
  type Stats,
  say,
  startHandler,
  stats,
} from "./lib.js";

export type PathStats = Stats & { rps: number };

export interface GatewayLevel {
  concurrency: number;
  direct: PathStats;
  traefik: PathStats;
  gateway: PathStats;
  bareHttpxy: PathStats;
  bareH3: PathStats;
  gptmeDirect: PathStats;
  gptmeGateway: PathStats;
}

export interface GatewayResult {
  levels: GatewayLevel[];
  callsPerRequest: number;
  events: { direct: Stats; gateway: Stats };
  streams: {
    count: number;
    seconds: number;
    rssBeforeMb: number;
    rssOpenMb: number;
    received: number;
    lost: number;
  };
}

const KEY = "bench-gateway-key-01";
const ROUNDS = 2;

/** Starts a process and waits for it to print "listening" (or for an HTTP answer at `probe`). */
async function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  probe?: string,
): Promise<ChildProcess> {
  const proc = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (d) => (output += d));
  proc.stderr?.on("data", (d) => (output += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (
      probe ? (await httpGet(probe).catch(() => undefined))?.status : output.includes("listening")
    )
      return proc;
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`${command} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function assertLocal(host: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host))
    throw new Error(`refusing to reach ${host}: loopback pod IPs only`);
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A closed loop of GETs against one URL; latencies and throughput. */
async function load(
  url: string,
  requests: number,
  concurrency: number,
  headers: Record<string, string> = {},
): Promise<{ latencies: number[]; seconds: number }> {
  return closedLoop(requests, concurrency, async () => {
    const { status } = await httpGet(url, headers);
    if (status !== 200) throw new Error(`${url} answered ${status}`);
  });
}

class Pooled {
  private readonly latencies: number[] = [];
  private seconds = 0;
  add(run: { latencies: number[]; seconds: number }): void {
    this.latencies.push(...run.latencies);
    this.seconds += run.seconds;
  }
  summary(): PathStats {
    return { ...stats(this.latencies), rps: this.latencies.length / this.seconds };
  }
}

/** Reads an event stream of {"seq","t"} frames; latency is arrival time minus the writer's t. */
function readEvents(
  url: string,
  headers: Record<string, string>,
  agent: http.Agent,
  onEvent: (seq: number, latencyMs: number) => void,
): Promise<http.ClientRequest> {
  return new Promise((resolveRequest, reject) => {
    const request = http.get(url, { headers, agent }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`${url} answered ${response.statusCode}`));
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        const now = performance.timeOrigin + performance.now();
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          const frame = JSON.parse(buffer.slice(6, end)) as { seq: number; t: number };
          onEvent(frame.seq, now - frame.t);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      });
      response.on("error", () => undefined);
      resolveRequest(request);
    });
    request.on("error", (e) => (request.destroyed ? undefined : reject(e)));
  });
}

/**
 * The instance gateway against the same requests sent straight to the upstream, with a real
 * Traefik proxying the same minimal upstream as the anchor, and the two proxy libraries
 * bare: what the gateway adds, and what its library costs.
 */
export async function gatewayBench(
  levels: number[],
  requests: number,
  streamCount: number,
): Promise<GatewayResult> {
  const namespace = await createNamespace("bench-gateway");
  await installTemplate(namespace);
  const handler = await startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: "5" });
  const procs: ChildProcess[] = [];
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  try {
    // Created without waiting: its upstream starts at its pod IP below, and the gateway's
    // first request is held until that upstream answers (ready means it answers).
    const instance = async (id: string) => {
      const { status, body } = await httpGet(`${handler.url}/instances/${id}?wait=0`, {
        "x-api-key": KEY,
      });
      if (status !== 202 && status !== 200) throw new Error(`instance ${id}: ${status} ${body}`);
      const parsed = JSON.parse(body) as {
        name: string;
        connection: { host: string; port: number };
        endpoint: { path: string; token: string };
      };
      const host = await podIpOf(namespace, parsed.name);
      assertLocal(host);
      return { ...parsed, connection: { host, port: 5700 } };
    };
    const mini = await instance("mini");
    const slow = await instance("streams");
    const gptme = await instance("gptme");
    const upstream = "bench/upstream.js";
    const node = (file: string) => resolve(ROOT, ".bench/scripts", file);
    procs.push(
      await startProcess(process.execPath, [node(upstream), mini.connection.host, "5700"]),
    );
    procs.push(
      await startProcess(process.execPath, [node(upstream), slow.connection.host, "5700"], {
        EVENT_INTERVAL_MS: "1000",
      }),
    );

    // gptme-server as the pod's container would run it: its IP, its port, its Secret's token.
    const gptmeBin = execFileSync("bash", [resolve(ROOT, "scripts/gptme-server.sh")], {
      encoding: "utf8",
    }).trim();
    const pod = await core.readNamespacedPod({ name: gptme.name, namespace });
    const ref = pod.spec?.containers[0]?.env?.find((e) => e.name === "GPTME_SERVER_TOKEN")
      ?.valueFrom?.secretKeyRef;
    const secret = await core.readNamespacedSecret({ name: ref?.name ?? "", namespace });
    const token = Buffer.from(secret.data?.token ?? "", "base64").toString();
    const gptmeUrl = `http://${gptme.connection.host}:5700`;
    procs.push(
      await startProcess(
        gptmeBin,
        ["serve", "--host", gptme.connection.host, "--port", "5700"],
        { HOME: mkdtempSync(join(tmpdir(), "bench-gptme-")), GPTME_SERVER_TOKEN: token },
        `${gptmeUrl}/api/v2/server/health`,
      ),
    );

    // Traefik proxying the same minimal upstream (file provider, one route).
    const traefikPort = await freePort();
    const dir = resolve(ROOT, ".bench/traefik");
    mkdirSync(dir, { recursive: true });
    const upstreamUrl = `http://${mini.connection.host}:5700`;
    writeFileSync(
      join(dir, "dynamic.yaml"),
      `http:\n  routers:\n    all: {rule: "PathPrefix(\`/\`)", service: mini, entryPoints: [web]}\n  services:\n    mini: {loadBalancer: {servers: [{url: "${upstreamUrl}"}]}}\n`,
    );
    const traefikBin = execFileSync(
      "bash",
      [
        "-c",
        `source ${resolve(ROOT, "scripts/cluster-env.sh")}; echo "$BIN_DIR/traefik-v$TRAEFIK_VERSION"`,
      ],
      { encoding: "utf8" },
    ).trim();
    procs.push(
      await startProcess(
        traefikBin,
        [
          `--entryPoints.web.address=127.0.0.1:${traefikPort}`,
          `--providers.file.filename=${join(dir, "dynamic.yaml")}`,
          "--log.level=ERROR",
        ],
        {},
        `http://127.0.0.1:${traefikPort}/ping`,
      ),
    );
    const h3Port = await freePort();
    const httpxyPort = await freePort();
    procs.push(
      await startProcess(process.execPath, [
        node("bench/proxies.js"),
        "h3",
        String(h3Port),
        upstreamUrl,
      ]),
    );
    procs.push(
      await startProcess(process.execPath, [
        node("bench/proxies.js"),
        "httpxy",
        String(httpxyPort),
        upstreamUrl,
      ]),
    );

    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const paths = {
      direct: { url: `${upstreamUrl}/ping`, headers: {} },
      traefik: { url: `http://127.0.0.1:${traefikPort}/ping`, headers: {} },
      gateway: {
        url: `${handler.url}${mini.endpoint.path}/ping`,
        headers: auth(mini.endpoint.token),
      },
      bareHttpxy: { url: `http://127.0.0.1:${httpxyPort}/ping`, headers: {} },
      bareH3: { url: `http://127.0.0.1:${h3Port}/ping`, headers: {} },
      gptmeDirect: { url: `${gptmeUrl}/api/v2/conversations?limit=1`, headers: auth(token) },
      gptmeGateway: {
        url: `${handler.url}${gptme.endpoint.path}/api/v2/conversations?limit=1`,
        headers: auth(gptme.endpoint.token),
      },
    } as const;
    type Path = keyof typeof paths;
    const order = Object.keys(paths) as Path[];

    // Warm-up, then the measured rounds with the order rotated.
    for (const p of order) await load(paths[p].url, 200, 4, paths[p].headers);
    let gatewayRequests = 0;
    const callsBefore = await apiCalls(handler.url);
    const results: GatewayLevel[] = [];
    for (const concurrency of levels) {
      const pooled = Object.fromEntries(order.map((p) => [p, new Pooled()])) as Record<
        Path,
        Pooled
      >;
      for (let round = 0; round < ROUNDS; round++) {
        const rotated = [
          ...order.slice(round % order.length),
          ...order.slice(0, round % order.length),
        ];
        for (const p of rotated) {
          // gptme-server (Flask, a thread per request, Connection: close) is far slower.
          const n = p.startsWith("gptme") ? Math.max(200, Math.floor(requests / 5)) : requests;
          pooled[p].add(await load(paths[p].url, n, concurrency, paths[p].headers));
          if (p === "gateway" || p === "gptmeGateway") gatewayRequests += n;
        }
      }
      const level = Object.fromEntries(order.map((p) => [p, pooled[p].summary()])) as Record<
        Path,
        PathStats
      >;
      results.push({ concurrency, ...level });
      say(
        `gateway c=${concurrency}: direct p50 ${level.direct.p50.toFixed(2)} ms, traefik ${level.traefik.p50.toFixed(2)}, gateway ${level.gateway.p50.toFixed(2)}, gptme direct ${level.gptmeDirect.p50.toFixed(2)}, via gateway ${level.gptmeGateway.p50.toFixed(2)}`,
      );
    }
    const callsPerRequest = ((await apiCalls(handler.url)) - callsBefore) / gatewayRequests;

    // Event latency: the upstream stamps each event; one stream direct, then one through the gateway.
    const streamAgent = new http.Agent({ keepAlive: false, maxSockets: streamCount + 10 });
    const latencyOf = async (url: string, headers: Record<string, string>) => {
      const samples: number[] = [];
      let done: () => void = () => undefined;
      const finished = new Promise<void>((r) => (done = r));
      const request = await readEvents(url, headers, streamAgent, (seq, latency) => {
        if (seq >= 25) samples.push(latency); // after a warm-up
        if (samples.length >= 500) done();
      });
      await finished;
      request.destroy();
      return stats(samples);
    };
    const events = {
      direct: await latencyOf(`${upstreamUrl}/events`, {}),
      gateway: await latencyOf(
        `${handler.url}${mini.endpoint.path}/events`,
        auth(mini.endpoint.token),
      ),
    };

    // Many open streams through one fresh handler (the load above leaves garbage that would
    // hide what the streams cost): memory, and every event delivered in order.
    const fresh = await startHandler(namespace);
    await load(`${fresh.url}${slow.endpoint.path}/ping`, 200, 4, auth(slow.endpoint.token));
    await new Promise((r) => setTimeout(r, 2_000));
    const rssBeforeMb = rssMb(fresh.pid);
    const seen = new Array<number>(streamCount).fill(-1);
    let lost = 0;
    let received = 0;
    const streams: http.ClientRequest[] = [];
    const slowUrl = `${fresh.url}${slow.endpoint.path}/events`;
    for (let i = 0; i < streamCount; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, streamCount - i) }, (_, j) =>
          readEvents(slowUrl, auth(slow.endpoint.token), streamAgent, (seq) => {
            const previous = seen[i + j] ?? -1;
            // Each stream starts at 0: any gap is an event the gateway lost.
            if (seq !== previous + 1) lost += Math.abs(seq - previous - 1);
            seen[i + j] = seq;
            received += 1;
          }),
        ),
      );
      streams.push(...batch);
    }
    const holdSeconds = 20;
    let rssOpenMb = 0;
    for (let s = 0; s < holdSeconds; s++) {
      await new Promise((r) => setTimeout(r, 1_000));
      rssOpenMb = Math.max(rssOpenMb, rssMb(fresh.pid));
    }
    for (const s of streams) s.destroy();
    await fresh.stop();
    say(
      `streams: ${streamCount} open, RSS ${rssBeforeMb.toFixed(0)} -> ${rssOpenMb.toFixed(0)} MB, ${received} events, ${lost} lost`,
    );
    return {
      levels: results,
      callsPerRequest,
      events,
      streams: { count: streamCount, seconds: holdSeconds, rssBeforeMb, rssOpenMb, received, lost },
    };
  } finally {
    for (const proc of procs) proc.kill("SIGTERM");
    await handler.stop();
    await deleteNamespace(namespace);
  }
}
