import { createServer, type Server } from "node:http";
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";
import pLimit from "p-limit";
import { HEALTH_PATH } from "../../shared/instance/serving.js";
import { fastCoreApi, mergePatch } from "./fast-api.js";
import { say } from "./lib.js";

// What the scale benchmark stands in for, since KWOK does not run its Pods: the Nodes they are
// bound to (a kubelet's heartbeats), a kubelet's confirmation of their deletion, and one
// listener at every Pod's IP that answers as an idle gptme-server does.

/**
 * Where every bench Pod "runs": one listener answers for all of them. SCALE_POD_IP gives a
 * second run on the machine (another checkout's, touch.ts) an address of its own.
 */
export const BENCH_POD_IP = process.env.SCALE_POD_IP ?? "127.52.200.1";
export const BENCH_POD_PORT = 5700;
/** Pods per bench Node (a large node's `pods` capacity). */
const PODS_PER_NODE = 1_000;
/** The bench's Nodes: tainted, so the scheduler never puts the handler's own Pods there. */
const NODE_TAINT = { key: "gptme.ai/bench", value: "scale", effect: "NoSchedule" };

/**
 * The bench's Node objects and their heartbeats (the Lease a kubelet renews), so the node
 * lifecycle controller never calls them unreachable and evicts their Pods.
 */
export class BenchNodes {
  private timer: NodeJS.Timeout | undefined;
  private readonly names: string[] = [];

  constructor(
    private readonly kc: KubeConfig,
    /** Names this run's Nodes (its namespace's name: two runs never share a Node). */
    readonly prefix: string,
  ) {}

  nodeOf(index: number): string {
    return `${this.prefix}-node-${Math.floor(index / PODS_PER_NODE)}`;
  }

  /** Nodes for instances [0, size). */
  async ensure(size: number): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    for (let n = this.names.length; n * PODS_PER_NODE < size; n++) {
      const name = this.nodeOf(n * PODS_PER_NODE);
      // Left by an earlier run that stopped before its clean-up: reused.
      await core
        .createNode({
          body: {
            metadata: { name, labels: { "gptme.ai/bench": "scale" } },
            spec: { taints: [NODE_TAINT] },
          },
        })
        .catch((error: { code?: number }) => {
          if (error.code !== 409) throw error;
        });
      await core.patchNodeStatus(
        {
          name,
          body: {
            status: {
              capacity: { cpu: "64", memory: "256Gi", pods: String(PODS_PER_NODE + 100) },
              allocatable: { cpu: "64", memory: "256Gi", pods: String(PODS_PER_NODE + 100) },
              conditions: [
                {
                  type: "Ready",
                  status: "True",
                  reason: "KubeletReady",
                  message: "the scale benchmark stands in for its kubelet",
                  lastHeartbeatTime: new Date(),
                  lastTransitionTime: new Date(),
                },
              ],
              addresses: [{ type: "InternalIP", address: BENCH_POD_IP }],
            },
          },
        },
        mergePatch,
      );
      this.names.push(name);
    }
    await this.renew();
    // The node lifecycle controller waits node-monitor-grace-period (3m20s on the local
    // cluster) before it calls a silent node unreachable.
    this.timer ??= setInterval(() => void this.renew().catch(() => undefined), 60_000);
  }

  private async renew(): Promise<void> {
    const leases = this.kc.makeApiClient(CoordinationV1Api);
    // A MicroTime: RFC 3339 with microseconds.
    const renewTime = new Date().toISOString().replace("Z", "000Z");
    await Promise.all(
      this.names.map(async (name) => {
        const spec = { holderIdentity: name, leaseDurationSeconds: 120, renewTime };
        await leases
          .patchNamespacedLease({ name, namespace: "kube-node-lease", body: { spec } }, mergePatch)
          .catch(() =>
            leases.createNamespacedLease({
              namespace: "kube-node-lease",
              body: { metadata: { name }, spec: spec as never },
            }),
          );
      }),
    );
  }

  /** Removes the Nodes; the pod garbage collector force-deletes whatever was bound to them. */
  async remove(): Promise<void> {
    clearInterval(this.timer);
    const core = this.kc.makeApiClient(CoreV1Api);
    const leases = this.kc.makeApiClient(CoordinationV1Api);
    for (const name of this.names) {
      await core.deleteNode({ name }).catch(() => undefined);
      await leases
        .deleteNamespacedLease({ name, namespace: "kube-node-lease" })
        .catch(() => undefined);
    }
  }
}

/**
 * A kubelet's last part for the bench's Pods: a Pod given a deletionTimestamp (deleted by the
 * reaper) is confirmed gone at once (grace period 0, by uid), as a kubelet does once its
 * containers stopped. Watches from now on: never lists the fleet.
 */
export async function confirmDeletions(kc: KubeConfig, namespace: string, nodes: BenchNodes) {
  // On one kept-alive connection, as a kubelet's: client-node's own opens one per call, and
  // its TLS handshakes took a tenth of the API server's CPU during a reaper pass (profiled).
  const core = fastCoreApi(kc);
  const { resourceVersion } =
    (await core.listNamespacedPod({ namespace, limit: 1 })).metadata ?? {};
  let stopped = false;
  let confirmed = 0;
  let controller: AbortController | undefined;
  const limit = pLimit(8);
  const start = (from: string | undefined) => {
    new Watch(kc)
      .watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { resourceVersion: from, allowWatchBookmarks: true },
        (type: string, pod: V1Pod) => {
          const { name, uid, deletionTimestamp, resourceVersion: rv } = pod.metadata ?? {};
          if (rv) from = rv;
          if (type !== "MODIFIED" || !deletionTimestamp || !name || !pod.spec?.nodeName) return;
          if (pod.metadata?.deletionGracePeriodSeconds === 0) return;
          if (!pod.spec.nodeName.startsWith(`${nodes.prefix}-node-`)) return;
          void limit(() =>
            core
              // In the body: with a body, the API server reads no options from the query.
              .deleteNamespacedPod({
                name,
                namespace,
                body: { gracePeriodSeconds: 0, preconditions: { uid } },
              })
              .then(() => confirmed++)
              .catch(() => undefined),
          );
        },
        (error: unknown) => {
          if (error) say(`scale: the deletions' watch ended (${(error as Error).message}), again`);
          if (!stopped) setTimeout(() => start(from), 500);
        },
      )
      .then((c) => {
        controller = c;
      })
      .catch(() => {
        if (!stopped) setTimeout(() => start(from), 500);
      });
  };
  start(resourceVersion);
  return {
    confirmed: () => confirmed,
    stop: () => {
      stopped = true;
      controller?.abort();
    },
  };
}

/**
 * The stand-in for every bench instance's gptme-server at BENCH_POD_IP: see idleServer.
 */
export function startUpstream(): Promise<{ server: Server; answered: () => number }> {
  return idleServer(BENCH_POD_IP, BENCH_POD_PORT);
}

/**
 * One listener that answers as an idle gptme-server does for as many instances as point at
 * it: health and metrics as the reaper's probe reads them, a short answer to anything else
 * (the gateway's upstream). Port 0: any free one (`server.address()`).
 */
export async function idleServer(
  host: string,
  port: number,
): Promise<{ server: Server; answered: () => number }> {
  let answered = 0;
  const server = createServer((req, res) => {
    answered++;
    if (req.url === HEALTH_PATH) {
      res.setHeader("content-type", "application/json");
      res.end(
        '{"generating_count":0,"health":"green","idle_count":1,"session_count":1,"slots":[]}',
      );
    } else if (req.url === "/api/v0/metrics") {
      res.end("gptme_server_sse_connections_active 0.0\n");
    } else {
      res.setHeader("content-type", "application/json");
      res.end('{"pong":true}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return { server, answered: () => answered };
}
