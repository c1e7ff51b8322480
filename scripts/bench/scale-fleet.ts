import { readFileSync } from "node:fs";
import { CoreV1Api, type KubeConfig, type V1PodTemplate } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { type HandlerConfig, revisionSettingsOf } from "../../shared/config/load.js";
import { planRecordOf } from "../../shared/config/plans.js";
import { type ClientPod, clientPodManifest } from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { buildPod } from "../../shared/instance/pod-spec.js";
import { mirrorAnnotations, recordOf } from "../../shared/instance/record.js";
import { ANNOTATION_REVISION, revisionOf } from "../../shared/instance/revision.js";
import { ANNOTATION_SERVING_SINCE } from "../../shared/instance/serving.js";
import { slotManifest } from "../../shared/instance/slots.js";
import { activityStatus } from "../../shared/instance/status.js";
import { workspacePvc } from "../../shared/instance/workspace.js";
import type { Kube } from "../../shared/kube/client.js";
import { instanceTokenOf, type TokenKey } from "../../shared/tokens/instance-token.js";
import { tokenEnv, tokenSecret } from "../../shared/tokens/secret.js";
import { fastCoreApi, mergePatch } from "./fast-api.js";
import { adminKube, adminKubeConfig, say } from "./lib.js";
import { BENCH_POD_IP, type BenchNodes } from "./scale-nodes.js";

// A fleet of tens of thousands of instances on the local control plane, as the handler leaves
// them (ClientPod and its status, instance slot, workspace claim, token Secret, Pod from the
// production template, running, seen answering), written directly with bounded concurrency. KWOK does not
// run these Pods: they are bound to the bench's Node objects (scale-nodes.ts), and their status
// is written here through the status subresource. Every instance's pod IP is one address where
// one listener answers as an idle gptme-server does.

/** Instances per client: GET /instances lists one client's (the default per-client limit). */
export const INSTANCES_PER_CLIENT = 5;
/** Writes in flight while building: tens, so the API server's own limits are not what is measured. */
const BUILD_CONCURRENCY = 16;
/**
 * The machine's available memory (MB) below which the fleet stops growing: it is shared, and
 * an out-of-memory kill would take someone else's process (SCALE_MEMORY_FLOOR_MB). It must
 * leave room for the measuring too: on 2026-12-06 the fleet reached 100,000 with 4.9 GB
 * available, and the API server (15.6 GB) was killed for memory while the run
 * measured at 100,000.
 */
const MEMORY_FLOOR_MB = Number(process.env.SCALE_MEMORY_FLOOR_MB ?? 8_000);

/**
 * When the fleet stops growing (SCALE_DEADLINE: an ISO time, or HH:MM in UTC today), so that a
 * run that cannot reach its largest size in the time it has measures the size it reached.
 */
const DEADLINE_MS = deadlineOf(process.env.SCALE_DEADLINE);

function deadlineOf(text: string | undefined): number {
  if (!text) return Number.POSITIVE_INFINITY;
  const hhmm = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (hhmm) {
    const day = new Date();
    day.setUTCHours(Number(hhmm[1]), Number(hhmm[2]), 0, 0);
    return day.getTime();
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new Error(`SCALE_DEADLINE: not a time: ${text}`);
  return at;
}

/** Why the fleet stopped growing before the size asked for. */
export type ShortOf = "memory" | "deadline";

function availableMb(): number {
  const kb = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
  return Number(kb) / 1024;
}

/** A claim bound to a volume that does not exist stays Pending, quietly: no provisioning, no events. */
const NO_VOLUME = "bench-scale-no-volume";

export interface Instance {
  index: number;
  apiKey: string;
  instanceId: string;
  name: string;
}

export function instanceAt(index: number): Instance {
  const apiKey = `bench-scale-key-${Math.floor(index / INSTANCES_PER_CLIENT)}`;
  const instanceId = `i${index}`;
  return { index, apiKey, instanceId, name: instanceNameOf(clientIdOf(apiKey), instanceId) };
}

/** One in ten instances is idle (last used a day ago); the reaper's pass is measured on them. */
export const isIdle = (index: number): boolean => index % 10 === 0;
export const IDLE_FOR_MS = 24 * 3600_000;
/**
 * The others were last used ten minutes before they were written: past ACTIVITY_INTERVAL at
 * every size, so a first gateway request records activity at 1,000 as at 100,000 (written
 * as "now", the 1,000 were measured within a minute of it and the larger fleets long after).
 */
export const ACTIVE_AGO_MS = 10 * 60_000;

export interface FleetBuilder {
  /**
   * Makes instances [from, to), or fewer if the machine's memory runs short (the control plane
   * takes about 0.2 GB per 1,000 instances): how long it took (s), and the size reached.
   */
  build(from: number, to: number): Promise<{ seconds: number; size: number; short?: ShortOf }>;
  /** Makes again those of the given instances that are gone (after a reaper pass). */
  rebuild(indices: number[]): Promise<number>;
  /** The uid of an instance's ClientPod (its token is derived from it). */
  uidOf(index: number): string;
}

/** Builds instances exactly as the handler's cold path leaves them, each step one write. */
export function fleetBuilder(
  kube: Kube,
  kc: KubeConfig,
  namespace: string,
  template: V1PodTemplate,
  config: HandlerConfig,
  key: TokenKey,
  nodes: BenchNodes,
): FleetBuilder {
  // The fleet's own transport (one keep-alive agent), not client-node's TLS handshake per call.
  const core = fastCoreApi(kc);
  const revision = revisionOf(template, revisionSettingsOf(config));
  const plan = config.plans.current().default;
  const uids: string[] = [];
  const make = async (index: number) => {
    const { apiKey, instanceId, name } = instanceAt(index);
    const clientId = clientIdOf(apiKey);
    const made = await kube.clientPods.create(
      clientPodManifest({
        name,
        clientId,
        instanceId,
        podTemplate: plan.template,
        plan: planRecordOf(plan),
        tokenKeyId: key.id,
      }),
    );
    if (!made.created) {
      // Still there (the reaper kept it): known, and nothing to make.
      const existing = await kube.clientPods.get(name);
      if (!existing) throw new Error(`${name} vanished`);
      uids[index] = existing.metadata.uid;
      return;
    }
    let cp: ClientPod = made.object;
    const { uid, creationTimestamp } = cp.metadata;
    uids[index] = uid;
    const claim = workspacePvc(
      { name, uid, clientId, instanceId, plan: plan.name },
      { size: plan.workspaceSize, storageClass: undefined },
      creationTimestamp,
    );
    // A claim kept from the instance of that name the reaper deleted: the user's workspace.
    // Its client's instance slot beside it (a slot of the instance reaped before may not have
    // gone yet: then it holds none, which no measurement here reads).
    const [claimed] = await Promise.all([
      kube.workspaces.create({ ...claim, spec: { ...claim.spec, volumeName: NO_VOLUME } }),
      kube.configMaps.create(slotManifest(cp, index % INSTANCES_PER_CLIENT)),
    ]);
    const now = new Date();
    const lastActivity = new Date(now.getTime() - (isIdle(index) ? IDLE_FOR_MS : ACTIVE_AGO_MS));
    const status = activityStatus(recordOf(cp), lastActivity, undefined, config);
    cp =
      (await kube.clientPods.patchStatus(name, {
        ...status,
        phase: "Running",
        podIP: BENCH_POD_IP,
        workspace: { name, state: claimed.created ? "new" : "kept" },
        revision,
      })) ?? cp;
    await kube.secrets.create(tokenSecret(cp, instanceTokenOf(key, uid)));
    const pod = buildPod(template, cp, {
      annotations: {
        ...mirrorAnnotations(cp),
        [ANNOTATION_REVISION]: revision,
        [ANNOTATION_SERVING_SINCE]: now.toISOString(),
      },
      resources: config,
      env: [tokenEnv(cp)],
      workspacePvc: name,
    });
    pod.spec = {
      ...pod.spec,
      containers: pod.spec?.containers ?? [],
      nodeName: nodes.nodeOf(index),
    };
    for (let attempt = 0; ; attempt++) {
      const result = await kube.pods.create(pod);
      if (result.created) break;
      // The Pod of the instance made before (reaped) is still going.
      if (attempt > 100) throw new Error(`the Pod ${name} did not go`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const at = now.toISOString();
    const condition = (type: string) => ({ type, status: "True", lastTransitionTime: at });
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: {
          status: {
            phase: "Running",
            hostIP: BENCH_POD_IP,
            podIP: BENCH_POD_IP,
            podIPs: [{ ip: BENCH_POD_IP }],
            startTime: at,
            conditions: ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map(condition),
          },
        },
      },
      mergePatch,
    );
  };
  /**
   * Makes `indices` in order; when growing, stops starting new ones once memory runs short or
   * SCALE_DEADLINE has passed.
   */
  const run = async (indices: Iterable<number>, total: number, growing: boolean) => {
    const started = performance.now();
    const limit = pLimit(BUILD_CONCURRENCY);
    let done = 0;
    let reached = -1;
    let short: ShortOf | undefined;
    const tasks: Promise<void>[] = [];
    for (const index of indices) {
      tasks.push(
        limit(async () => {
          if (short) return;
          reached = Math.max(reached, index);
          await make(index);
          if (++done % 100 === 0 && growing && Date.now() > DEADLINE_MS) short ??= "deadline";
          if (done % 1_000 === 0) {
            if (growing && availableMb() < MEMORY_FLOOR_MB) short ??= "memory";
            const rate = done / ((performance.now() - started) / 1000);
            say(
              `scale:   ${done}/${total} instances (${rate.toFixed(0)}/s, ${availableMb().toFixed(0)} MB of memory available)`,
            );
          }
        }),
      );
    }
    // Every task finished before this returns, even on a failure: nothing is made afterwards.
    const failure = (await Promise.allSettled(tasks)).find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
    return { seconds: (performance.now() - started) / 1000, reached: reached + 1, short };
  };
  return {
    build: async (from, to) => {
      await nodes.ensure(to);
      function* range() {
        for (let i = from; i < to; i++) yield i;
      }
      const { seconds, reached, short } = await run(range(), to - from, true);
      if (short === "memory")
        say(`scale: stopped growing at ${reached} instances: the machine's memory is short`);
      if (short === "deadline")
        say(`scale: stopped growing at ${reached} instances: SCALE_DEADLINE passed`);
      return { seconds, size: short ? reached : to, short };
    },
    rebuild: async (indices) => (await run(indices, indices.length, false)).seconds,
    uidOf: (index) => {
      const uid = uids[index];
      if (!uid) throw new Error(`instance ${index} was not built`);
      return uid;
    },
  };
}

/** JSON bytes of one fleet object of each kind, as the API server answers it. */
export async function objectBytesOf(namespace: string): Promise<Record<string, number>> {
  const kube = adminKube(namespace);
  const { name } = instanceAt(0);
  const cp = await kube.clientPods.get(name);
  const pod = await kube.pods.get(name);
  const claim = await kube.workspaces.get(name);
  const secrets = await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .listNamespacedSecret({ namespace, limit: 1, labelSelector: `gptme.ai/instance=i0` });
  kube.close();
  const bytes = (o: unknown) => JSON.stringify(o).length;
  return {
    clientPod: bytes(cp),
    pod: bytes(pod),
    persistentVolumeClaim: bytes(claim),
    secret: bytes(secrets.items[0]),
  };
}
