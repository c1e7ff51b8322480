import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { type EventLatency, eventLatency, readEvents } from "./events.js";
import {
  adminKubeConfig,
  apiCalls,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  ROOT,
  rssMb,
  say,
  startHandler,
} from "./lib.js";
import {
  answers,
  freePort,
  type LoadPath,
  measureLevels,
  type PathStats,
  Pooled,
  proxiedInstance,
  startProcess,
  startTraefik,
  WARM_UP,
} from "./proxy-lib.js";

export type { PathStats } from "./proxy-lib.js";

export interface GatewayLevel {
  concurrency: number;
  direct: PathStats;
  traefik: PathStats;
  gateway: PathStats;
  bareHttpxy: PathStats;
  gptmeDirect: PathStats;
  gptmeTraefik: PathStats;
  gptmeGateway: PathStats;
}

export interface GatewayResult {
  levels: GatewayLevel[];
  /** Requests sent along each path before measuring. */
  warmUp: number;
  /** Rounds of each path per level, the order rotated. */
  rounds: number;
  callsPerRequest: number;
  events: { direct: EventLatency; gateway: EventLatency; traefik: EventLatency };
  streams: {
    count: number;
    seconds: number;
    rssBeforeMb: number;
    rssOpenMb: number;
    received: number;
    lost: number;
  };
  /** Where the handler's CPU profile was written (BENCH_CPU_PROF), if asked for. */
  profileDir?: string;
}

const KEY = "bench-gateway-key-01";
/** Rounds of each path per level, the order rotated: the machine's other load falls on every path alike. */
const ROUNDS = 4;
/**
 * Event latency: 5 rounds of 40 streams opened per path (each timed to its first event), then
 * 1,000 events (one per 20 ms) read along every path at once.
 */
export const EVENT_SETTINGS = { rounds: 5, opens: 40, events: 1_000, skip: 25 };

/**
 * The instance gateway against the same requests sent straight to the upstream, with a real
 * Traefik proxying the same upstreams as the anchor (latency, throughput and each proxy's
 * CPU per request), and httpxy bare: what the gateway adds, and what a library costs.
 * `requests` per path and level (over the rounds). `BENCH_CPU_PROF=<dir>` runs the handler
 * under `node --cpu-prof` (profile written at its exit).
 */
export async function gatewayBench(
  levels: number[],
  requests: number,
  streamCount: number,
): Promise<GatewayResult> {
  const namespace = await createNamespace("bench-gateway");
  await installTemplate(namespace);
  const profileDir = process.env.BENCH_CPU_PROF;
  const handler = await startHandler(
    namespace,
    { MAX_INSTANCES_PER_CLIENT: "5" },
    profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [],
  );
  const procs: ChildProcess[] = [];
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  try {
    const instance = (id: string) => proxiedInstance(handler.url, namespace, KEY, id);
    const mini = await instance("mini");
    const slow = await instance("streams");
    const gptme = await instance("gptme");
    const node = (file: string) => resolve(ROOT, ".bench/scripts/bench", file);
    const upstreamUrl = `http://${mini.connection.host}:5700`;
    procs.push(
      await startProcess(
        process.execPath,
        [node("upstream.js"), mini.connection.host, "5700"],
        {},
        answers(`${upstreamUrl}/ping`),
      ),
    );
    procs.push(
      await startProcess(
        process.execPath,
        [node("upstream.js"), slow.connection.host, "5700"],
        { EVENT_INTERVAL_MS: "1000" },
        answers(`http://${slow.connection.host}:5700/ping`),
      ),
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
        async () => (await httpGet(`${gptmeUrl}/api/v2/server/health`)).status === 200,
      ),
    );

    // Traefik proxying the same upstreams (file provider, one entry point per upstream).
    const traefik = await startTraefik([
      { name: "mini", upstream: upstreamUrl },
      { name: "gptme", upstream: gptmeUrl },
    ]);
    procs.push(traefik.proc);
    const httpxyPort = await freePort();
    const bareHttpxy = await startProcess(
      process.execPath,
      [node("proxies.js"), "httpxy", String(httpxyPort), upstreamUrl],
      {},
      answers(`http://127.0.0.1:${httpxyPort}/ping`),
    );
    procs.push(bareHttpxy);

    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const traefikUrl = (name: string) => `http://127.0.0.1:${traefik.ports[name]}`;
    const paths = {
      direct: { url: `${upstreamUrl}/ping`, headers: {} },
      traefik: { url: `${traefikUrl("mini")}/ping`, headers: {}, pid: traefik.proc.pid },
      gateway: {
        url: `${handler.url}${mini.endpoint.path}/ping`,
        headers: auth(mini.endpoint.token),
        pid: handler.pid,
      },
      bareHttpxy: { url: `http://127.0.0.1:${httpxyPort}/ping`, headers: {}, pid: bareHttpxy.pid },
      gptmeDirect: { url: `${gptmeUrl}/api/v2/conversations?limit=1`, headers: auth(token) },
      gptmeTraefik: {
        url: `${traefikUrl("gptme")}/api/v2/conversations?limit=1`,
        headers: auth(token),
        pid: traefik.proc.pid,
      },
      gptmeGateway: {
        url: `${handler.url}${gptme.endpoint.path}/api/v2/conversations?limit=1`,
        headers: auth(gptme.endpoint.token),
        pid: handler.pid,
      },
    } satisfies Record<string, LoadPath>;
    type Path = keyof typeof paths;
    const gatewayPaths: Path[] = ["gateway", "gptmeGateway"];
    // `requests` per path and level, over the rounds; gptme-server (Flask, a thread per
    // request, Connection: close) is far slower: a fifth of that.
    const requestsOf = (p: Path) =>
      Math.floor(p.startsWith("gptme") ? Math.max(400, requests / 5) / ROUNDS : requests / ROUNDS);

    const callsBefore = await apiCalls(handler.url);
    const results = await measureLevels(paths, levels, ROUNDS, requestsOf, (c, level) =>
      say(
        `gateway c=${c}: p50 direct ${level.direct.p50.toFixed(2)} ms, traefik ${level.traefik.p50.toFixed(2)}, gateway ${level.gateway.p50.toFixed(2)}; CPU/1000 traefik ${level.traefik.cpuPer1000Ms?.toFixed(0)} ms, gateway ${level.gateway.cpuPer1000Ms?.toFixed(0)} ms; gptme via traefik ${level.gptmeTraefik.cpuPer1000Ms?.toFixed(0)} ms, via gateway ${level.gptmeGateway.cpuPer1000Ms?.toFixed(0)} ms`,
      ),
    );
    const gatewayRequests =
      WARM_UP * gatewayPaths.length +
      levels.length * ROUNDS * gatewayPaths.map(requestsOf).reduce((a, b) => a + b, 0);
    const callsPerRequest = ((await apiCalls(handler.url)) - callsBefore) / gatewayRequests;

    // Event latency: the upstream stamps each event (the first at once); streams direct,
    // through Traefik and through the gateway, in turns.
    const events = await eventLatency(
      {
        direct: { url: `${upstreamUrl}/events`, headers: {} },
        traefik: { url: `${traefikUrl("mini")}/events`, headers: {} },
        gateway: {
          url: `${handler.url}${mini.endpoint.path}/events`,
          headers: auth(mini.endpoint.token),
        },
      },
      EVENT_SETTINGS,
    );
    const streamAgent = new http.Agent({ keepAlive: false, maxSockets: streamCount + 10 });

    // Many open streams through one fresh handler (the load above leaves garbage that would
    // hide what the streams cost): memory, and every event delivered in order.
    const fresh = await startHandler(namespace);
    await new Pooled().run(
      { url: `${fresh.url}${slow.endpoint.path}/ping`, headers: auth(slow.endpoint.token) },
      200,
      4,
    );
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
      warmUp: WARM_UP,
      rounds: ROUNDS,
      callsPerRequest,
      events,
      profileDir,
      streams: { count: streamCount, seconds: holdSeconds, rssBeforeMb, rssOpenMb, received, lost },
    };
  } finally {
    for (const proc of procs) proc.kill("SIGTERM");
    await handler.stop();
    await deleteNamespace(namespace);
  }
}
