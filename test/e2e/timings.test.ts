import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, describe, expect, inject, it } from "vitest";
import {
  core,
  deleteInstance,
  handlerPods,
  k,
  NAMESPACE,
  podStartedAt,
  poolOff,
  readPod,
} from "./support/fleet.js";

const OUT = resolve(import.meta.dirname, "../../.bench/real-node-timings.json");
const isReady = (p: V1Pod | undefined) =>
  !!p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

/**
 * Watches one pod by polling every 50 ms and records when each stage was first seen, in ms
 * since `t0`, until the pod is Ready: scheduled (a node is set), the sandbox's and the
 * container's processes started (from the kernel: the API's timestamps carry whole seconds
 * and its status lags), the server's first answer at the pod IP (`port`, `path`), and Ready
 * as the API reports it (after the readiness probe).
 */
function watchPod(name: () => string | undefined, t0: number, port: number, path: string) {
  const seen: Record<string, number> = {};
  const mark = (stage: string, yes: boolean, at = Date.now()) => {
    if (yes && seen[stage] === undefined) seen[stage] = at - t0;
  };
  const ready = (async () => {
    while (seen.ready === undefined || seen.serverAnswered === undefined) {
      if (Date.now() - t0 > 120_000) throw new Error("the pod was not Ready within 120 s");
      const n = name();
      const pod = n ? await readPod(n) : undefined;
      mark("created", !!pod);
      mark("scheduled", !!pod?.spec?.nodeName);
      if (
        pod?.status?.containerStatuses?.[0]?.state?.running &&
        seen.containerStarted === undefined
      ) {
        const started = podStartedAt(pod);
        mark("sandboxStarted", true, started.sandbox);
        mark("containerStarted", true, started.container);
      }
      if (pod?.status?.podIP && seen.serverAnswered === undefined) {
        const res = await fetch(`http://${pod.status.podIP}:${port}${path}`, {
          signal: AbortSignal.timeout(1_000),
        }).catch(() => undefined);
        mark("serverAnswered", res?.status === 200);
      }
      mark("ready", isReady(pod));
      await new Promise((r) => setTimeout(r, 50));
    }
    return seen;
  })();
  return { seen, ready };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

// Figures for docs/BENCHMARKS.md ("Real node"), measured on real containers. Each run
// writes them to .bench/real-node-timings.json.
describe("timings on the real node", () => {
  const results: Record<string, unknown> = {};
  const made: string[] = [];
  afterAll(async () => {
    for (const name of made) await deleteInstance(name);
    mkdirSync(resolve(OUT, ".."), { recursive: true });
    writeFileSync(
      OUT,
      `${JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2)}\n`,
    );
  });

  it("cold start of a real instance: request to Ready, split by stage", async () => {
    const runs: Record<string, number>[] = [];
    // A cold start: with the pool on, a new client would be handed a member started earlier.
    const pool = poolOff();
    try {
      for (let i = 0; i < 3; i++) runs.push(await coldStart());
    } finally {
      pool.restore();
    }
    const stages = [
      "scheduled",
      "sandboxStarted",
      "containerStarted",
      "serverAnswered",
      "ready",
      "requestToReady",
    ];
    results.coldStart = {
      runs,
      median: Object.fromEntries(stages.map((s) => [s, median(runs.map((r) => r[s] ?? NaN))])),
    };
    console.log("cold start (ms since the request):", JSON.stringify(results.coldStart, null, 1));
    for (const run of runs) expect(run.requestToReady).toBeLessThan(60_000);
  }, 600_000);

  /** One new instance, from the request to Ready, each stage as first seen. */
  async function coldStart(): Promise<Record<string, number>> {
    const key = `e2e-cold-key-${Date.now()}`;
    const t0 = Date.now();
    // The instance's name is in the answer; the pod can be watched once the first,
    // non-waiting request has created it.
    const first = await fetch(`${inject("traefikUrl")}/api/v1/${key}/instances/cold?wait=0`);
    const { name } = (await first.json()) as { name: string };
    made.push(name);
    const watch = watchPod(() => name, t0, 5700, "/api/v2/server/health");
    const res = await fetch(`${inject("traefikUrl")}/api/v1/${key}/instances/cold?wait=60`);
    const answered = Date.now() - t0;
    const body = (await res.json()) as { status: string };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ready");
    return { ...(await watch.ready), requestToReady: answered };
  }

  it("handler pod startup to Ready", async () => {
    const runs: Record<string, number>[] = [];
    for (let i = 0; i < 2; i++) {
      const victim = (await handlerPods())[0];
      // Every handler pod there is, terminating ones included: none of them is the new one.
      const before = new Set(
        (
          await core().listNamespacedPod({
            namespace: NAMESPACE,
            labelSelector: "app.kubernetes.io/name=fleet-handler",
          })
        ).items.map((p) => p.metadata?.name),
      );
      const t0 = Date.now();
      k(["delete", "pod", victim?.metadata?.name ?? "", "-n", NAMESPACE, "--wait=false"]);
      // The ReplicaSet's replacement: the handler pod that was not there before.
      let replacement: string | undefined;
      const watch = watchPod(() => replacement, t0, 8080, "/healthz");
      while (!replacement) {
        const pods = await core().listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: "app.kubernetes.io/name=fleet-handler",
        });
        replacement = pods.items.map((p) => p.metadata?.name).find((n) => n && !before.has(n));
        if (!replacement) await new Promise((r) => setTimeout(r, 50));
      }
      runs.push(await watch.ready);
      k(["rollout", "status", "deployment/fleet-handler", "-n", NAMESPACE, "--timeout=120s"]);
    }
    const stages = [
      "created",
      "scheduled",
      "sandboxStarted",
      "containerStarted",
      "serverAnswered",
      "ready",
    ];
    results.handlerStartup = {
      runs,
      median: Object.fromEntries(stages.map((s) => [s, median(runs.map((r) => r[s] ?? NaN))])),
    };
    console.log(
      "handler pod (ms since the delete):",
      JSON.stringify(results.handlerStartup, null, 1),
    );
    for (const run of runs) expect(run.ready).toBeLessThan(60_000);
  });
});
