import { readFileSync } from "node:fs";
import { CoreV1Api } from "@kubernetes/client-node";
import { loadHandlerConfig } from "../../shared/config/load.js";
import {
  instanceTokenOf,
  newTokenKey,
  parseTokenKeys,
} from "../../shared/tokens/instance-token.js";
import { answerPodHealth } from "../lib/pod-health.js";
import { heapProbe } from "./heap.js";
import {
  adminKube,
  adminKubeConfig,
  createNamespace,
  deleteNamespace,
  httpGet,
  httpRequest,
  installFleetQuota,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { type TimedPass, timedReaperPass } from "./reaper.js";
import { fleetBuilder, instanceAt, isIdle, objectBytesOf, type ShortOf } from "./scale-fleet.js";
import { type PathCost, pathMeter } from "./scale-measure.js";
import { type ControlPlane, controlPlane } from "./scale-metrics.js";
import { BenchNodes, confirmDeletions, startUpstream } from "./scale-nodes.js";
import { poolClaims } from "./scale-pool.js";
import { closedLoop } from "./stats.js";

// The fleet at 1,000, 10,000 and 100,000 instances (SCALE_SIZES), grown in one namespace in
// one run, and at each size what a client, the gateway, an admin and the reaper cost, with
// what the control plane holds. A fresh handler process per size (its caches start empty).

export interface SizeResult {
  instances: number;
  buildSeconds: number;
  warm1: PathCost;
  warm16: PathCost;
  gatewayUncached: PathCost;
  gatewayCached: PathCost;
  listOwn: PathCost;
  adminFirstPage: PathCost;
  /** A login code minted for a running instance (POST /instances/:id/login), and its exchange. */
  login: PathCost;
  exchange: PathCost;
  cold: PathCost;
  claim: PathCost;
  /** A --dry-run pass first: what reading and probing the fleet costs, nothing deleted. */
  reaperDryRun: TimedPass;
  reaper: TimedPass;
  /** Handler RSS once the gateway has proxied one request to every instance of the fleet. */
  touchAll: {
    requests: number;
    seconds: number;
    rssBeforeMb: number;
    rssAfterMb: number;
    /** After a garbage collection: what the handler's heap still reaches, and its buffers. */
    heapUsedBeforeMb: number;
    heapUsedAfterMb: number;
    heapTotalAfterMb: number;
    arrayBuffersAfterMb: number;
    failed: number;
    etcdWritesPerRequest: number;
  };
  cluster: ControlPlane;
}

export interface ScaleResult {
  sizes: SizeResult[];
  /** JSON bytes of one of each object, as the API server answers it. */
  objectBytes: Record<string, number>;
  /** Why the fleet stopped short of the largest size asked for, if it did. */
  stoppedBy?: ShortOf;
}

const ADMIN_TOKEN = "bench-scale-admin-token-0123456789";

export async function scaleBench(sizes: number[], samples: number): Promise<ScaleResult> {
  const namespace = await createNamespace("bench-scale");
  await installTemplate(namespace);
  // As the manifests set it up: the fleet's cap a quota, which the handler trusts.
  await installFleetQuota(namespace, 1_000_000);
  const kc = adminKubeConfig();
  const kube = adminKube(namespace);
  const core = kc.makeApiClient(CoreV1Api);
  const keyText = newTokenKey();
  const key = parseTokenKeys(keyText).current;
  const env = {
    INSTANCE_TOKEN_SECRET: keyText,
    MAX_INSTANCES: String(1_000_000),
    MAX_INSTANCES_PER_CLIENT: "50",
    ADMIN_TOKEN,
    // Sign-in's exchange answers with the instance's URL under it.
    PUBLIC_URL: "https://fleet.example.com",
  };
  const config = loadHandlerConfig({
    env: { NAMESPACE: namespace, CLIENT_AUTH: "open", ...env },
    readFile: (path) => readFileSync(path, "utf8"),
  });
  const template = await kube.podTemplates.get(config.plans.current().default.template);
  if (!template) throw new Error("no PodTemplate");
  const nodes = new BenchNodes(kc, namespace);
  const upstream = await startUpstream();
  const deletions = await confirmDeletions(kc, namespace, nodes);
  // Cold starts and pool members run on the KWOK nodes: something answers their health check.
  const health = ["node-000000", "node-000001"].map((node) =>
    answerPodHealth(core, namespace, { fieldSelector: `spec.nodeName=${node}` }),
  );
  const cluster = controlPlane(kc);
  const builder = fleetBuilder(kube, kc, namespace, template, config, key, nodes);
  const results: SizeResult[] = [];
  let built = 0;
  let objectBytes: Record<string, number> = {};
  let stoppedBy: ShortOf | undefined;

  const { measure, measureFirstAndNext } = pathMeter(cluster);

  try {
    for (const wanted of sizes) {
      say(`scale: growing the fleet to ${wanted} instances in ${namespace}`);
      const grown = await builder.build(built, wanted);
      const size = grown.size;
      const buildSeconds = grown.seconds;
      built = size;
      stoppedBy = grown.short;
      if (Object.keys(objectBytes).length === 0) objectBytes = await objectBytesOf(namespace);
      // Instances to measure, spread over the fleet; none idle (the reaper's pass is on them).
      const active = spread(size, samples * 3).filter((i) => !isIdle(i));
      const warmSet = active.slice(0, 64).map(instanceAt);
      const gatewaySet = active.slice(64, 64 + samples);
      const heap = heapProbe(`/tmp/${namespace}-heap.json`);
      const handler = await startHandler(namespace, { ...env, ...heap.env }, heap.nodeArgs);
      const get = async (path: string, headers: Record<string, string>, status = 200) =>
        (await httpGet(`${handler.url}${path}`, headers)).status === status;
      const asClient = (i: number) => ({ "x-api-key": instanceAt(i).apiKey });
      try {
        say(`scale ${size}: warm GET /instances/:id`);
        for (const inst of warmSet)
          await get(`/instances/${inst.instanceId}`, asClient(inst.index));
        const warm = (i: number) => {
          const inst = warmSet[i % warmSet.length] ?? instanceAt(0);
          return get(`/instances/${inst.instanceId}`, asClient(inst.index));
        };
        const warm1 = await measure(handler, samples * 2, 1, warm);
        const warm16 = await measure(handler, samples * 8, 16, warm);

        say(`scale ${size}: gateway, uncached then cached`);
        const gatewayTo = (index: number) => {
          const { name } = instanceAt(index);
          const token = instanceTokenOf(key, builder.uidOf(index));
          return get(`/api/v1/instances/${name}/ping`, { authorization: `Bearer ${token}` });
        };
        const gatewayAt = (n: number) => gatewayTo(gatewaySet[n % gatewaySet.length] ?? 0);
        const gateway = await measureFirstAndNext(handler, gatewaySet.length, gatewayAt);
        const [gatewayUncached, gatewayCached] = [gateway.first, gateway.next];

        say(`scale ${size}: GET /instances, first page of /admin/pods`);
        const listOwn = await measure(handler, samples, 1, (i) =>
          get("/instances", asClient(warmSet[i % warmSet.length]?.index ?? 0)),
        );
        const adminFirstPage = await measure(handler, Math.max(5, samples / 10), 1, () =>
          get("/admin/pods", { authorization: `Bearer ${ADMIN_TOKEN}` }),
        );

        say(`scale ${size}: sign-in, a login code then its exchange`);
        const codes: string[] = [];
        const login = await measure(handler, samples, 1, async (i) => {
          const inst = warmSet[i % warmSet.length] ?? instanceAt(0);
          const res = await httpRequest(`${handler.url}/instances/${inst.instanceId}/login`, {
            method: "POST",
            headers: asClient(inst.index),
          });
          const code = res.status === 200 && JSON.parse(res.body).login?.code;
          if (code) codes.push(code);
          return Boolean(code);
        });
        const exchange = await measure(handler, codes.length, 1, async (i) => {
          const res = await httpRequest(`${handler.url}/api/v1/operator/auth/exchange`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ code: codes[i] }),
          });
          return res.status === 200;
        });

        say(`scale ${size}: cold starts`);
        const coldKey = (j: number) => ({ "x-api-key": `bench-scale-cold-${size}-${j}` });
        const coldCount = Math.max(3, samples / 20);
        const cold = await measure(handler, coldCount, 1, (j) =>
          get("/instances/cold?wait=30", coldKey(j)),
        );
        for (let j = 0; j < coldCount; j++) {
          await fetch(`${handler.url}/instances/cold?purge=true`, {
            method: "DELETE",
            headers: coldKey(j),
          });
        }

        say(`scale ${size}: pool claims`);
        const claim = await poolClaims(namespace, env, config, keyText, size, coldCount, measure);

        say(`scale ${size}: the reaper's pass (${Math.ceil(size / 10)} idle), dry run first`);
        const reaperDryRun = await timedReaperPass(namespace, [
          "--idle-timeout",
          "12h",
          "--dry-run",
        ]);
        const reaper = await timedReaperPass(namespace, ["--idle-timeout", "12h"]);
        say(
          `scale ${size}: reaper ${reaper.seconds} s, ${reaper.peakRssMb.toFixed(0)} MB, ${JSON.stringify(reaper.summary)}`,
        );
        // The reaped instances made again (idle again), so the fleet is whole for the next size
        // (after the last, nothing needs them: the gateway touches the active ones only).
        if (size === wanted && wanted !== sizes.at(-1)) {
          const reaped = Array.from({ length: size }, (_, i) => i).filter(isIdle);
          await builder.rebuild(reaped);
          say(`scale ${size}: made again; ${deletions.confirmed()} Pod deletions confirmed so far`);
        }

        say(`scale ${size}: the gateway touches every instance`);
        const before = await heap.read(handler.pid);
        const plane0 = await cluster.read();
        let failed = 0;
        // Not the idle ones: touched, they would be active, and the next pass needs them idle.
        const touched = await closedLoop(size, 16, async (i) => {
          if (!isIdle(i) && !(await gatewayTo(i))) failed++;
        });
        const plane1 = await cluster.read();
        // SCALE_HEAP_SNAPSHOT=<path prefix>: a heap snapshot too (after RSS was read).
        const snapshot = process.env.SCALE_HEAP_SNAPSHOT;
        const after = await heap.read(handler.pid, snapshot && `${snapshot}-${size}.heapsnapshot`);
        const touchedCount = size - Math.ceil(size / 10);
        results.push({
          instances: size,
          buildSeconds,
          warm1,
          warm16,
          gatewayUncached,
          gatewayCached,
          listOwn,
          adminFirstPage,
          login,
          exchange,
          cold,
          claim,
          reaperDryRun,
          reaper,
          touchAll: {
            requests: touchedCount,
            seconds: touched.seconds,
            rssBeforeMb: before.rssMb,
            rssAfterMb: after.rssMb,
            heapUsedBeforeMb: before.heapUsedMb,
            heapUsedAfterMb: after.heapUsedMb,
            heapTotalAfterMb: after.heapTotalMb,
            arrayBuffersAfterMb: after.arrayBuffersMb,
            failed,
            etcdWritesPerRequest: (plane1.etcdWrites - plane0.etcdWrites) / touchedCount,
          },
          cluster: plane1,
        });
        say(`scale ${size}: ${JSON.stringify(results.at(-1))}`);
      } finally {
        await handler.stop();
      }
      if (size < wanted) break; // The machine can hold no more.
    }
    return { sizes: results, objectBytes, stoppedBy };
  } catch (error) {
    say(`scale: stopped: ${(error as Error).stack ?? error}`);
    throw error;
  } finally {
    deletions.stop();
    for (const h of health) await h.stop();
    upstream.server.close();
    cluster.close();
    kube.close();
    say(`scale: deleting ${namespace} (its Pods first, at once: no kubelet runs them)`);
    await core
      .deleteCollectionNamespacedPod({ namespace, body: { gracePeriodSeconds: 0 } })
      .catch(() => undefined);
    await nodes.remove();
    await deleteNamespace(namespace);
  }
}

/** `count` indices spread evenly over [0, size). */
function spread(size: number, count: number): number[] {
  const step = Math.max(1, Math.floor(size / count));
  return Array.from({ length: Math.min(count, size) }, (_, k) => (k * step + 7) % size);
}
