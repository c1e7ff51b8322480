import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import {
  adminKubeConfig,
  apiCalls,
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
import {
  answers,
  assertLocal,
  freePort,
  type LoadPath,
  measureLevels,
  type PathStats,
  Pooled,
  startProcess,
  startTraefik,
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
  callsPerRequest: number;
  events: { direct: Stats; gateway: Stats; traefik: Stats };
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
const ROUNDS = 2;

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
 * Traefik proxying the same upstreams as the anchor (latency, throughput and each proxy's
 * CPU per request), and httpxy bare: what the gateway adds, and what a library costs.
 * `BENCH_CPU_PROF=<dir>` runs the handler under `node --cpu-prof` (profile written at its exit).
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
    // Created without waiting: its upstream starts at its pod IP below, and the gateway's
    // first request is held until that upstream answers (ready means it answers).
    const instance = async (id: string) => {
      const { status, body } = await httpGet(`${handler.url}/instances/${id}?wait=0`, {
        "x-api-key": KEY,
      });
      if (status !== 202 && status !== 200) throw new Error(`instance ${id}: ${status} ${body}`);
      const parsed = JSON.parse(body) as {
        name: string;
        endpoint: { path: string; token: string };
      };
      const host = await podIpOf(namespace, parsed.name);
      assertLocal(host);
      return { ...parsed, connection: { host, port: 5700 } };
    };
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
    // gptme-server (Flask, a thread per request, Connection: close) is far slower.
    const requestsOf = (p: Path) =>
      p.startsWith("gptme") ? Math.max(200, Math.floor(requests / 5)) : requests;

    const callsBefore = await apiCalls(handler.url);
    const results = await measureLevels(paths, levels, ROUNDS, requestsOf, (c, level) =>
      say(
        `gateway c=${c}: p50 direct ${level.direct.p50.toFixed(2)} ms, traefik ${level.traefik.p50.toFixed(2)}, gateway ${level.gateway.p50.toFixed(2)}; CPU/1000 traefik ${level.traefik.cpuPer1000Ms?.toFixed(0)} ms, gateway ${level.gateway.cpuPer1000Ms?.toFixed(0)} ms; gptme via traefik ${level.gptmeTraefik.cpuPer1000Ms?.toFixed(0)} ms, via gateway ${level.gptmeGateway.cpuPer1000Ms?.toFixed(0)} ms`,
      ),
    );
    const gatewayRequests =
      200 * gatewayPaths.length +
      levels.length * ROUNDS * gatewayPaths.map(requestsOf).reduce((a, b) => a + b, 0);
    const callsPerRequest = ((await apiCalls(handler.url)) - callsBefore) / gatewayRequests;

    // Event latency: the upstream stamps each event; one stream direct, then one through
    // Traefik, then one through the gateway.
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
      traefik: await latencyOf(`${traefikUrl("mini")}/events`, {}),
      gateway: await latencyOf(
        `${handler.url}${mini.endpoint.path}/events`,
        auth(mini.endpoint.token),
      ),
    };

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
