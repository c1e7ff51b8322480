import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import {
  deleteInstance,
  eventually,
  k,
  NAMESPACE,
  podNameOf,
  podStartedAt,
  poolOff,
  readPod,
} from "./support/fleet.js";

const OUT = resolve(import.meta.dirname, "../../.bench/real-node-pool-timings.json");
const RUNS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.99) - 1] ?? NaN;

/**
 * From the request to gptme-server's first answer through the gateway (Traefik, then the
 * handler's gateway, then the pod): one GET /instances (waiting for ready), then the
 * instance's own token on an authenticated gptme-server path until it answers 200.
 */
async function firstAnswer(key: string, id: string) {
  const traefik = inject("traefikUrl");
  const t0 = Date.now();
  const res = await fetch(`${traefik}/api/v1/${key}/instances/${id}?wait=60`);
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  const body: any = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  const answeredMs = Date.now() - t0;
  let status = 0;
  let tries = 0;
  // What the gateway answered first when that was not 200: why a client had to ask again.
  let firstRefusal = "";
  while (status !== 200 && Date.now() - t0 < 60_000) {
    tries++;
    const answer = await fetch(`${traefik}${body.endpoint.path}/api/v2/conversations`, {
      headers: { authorization: `Bearer ${body.endpoint.token}` },
    });
    status = answer.status;
    const text = await answer.text();
    if (status !== 200 && !firstRefusal) firstRefusal = `${status} ${text.slice(0, 300)}`;
  }
  return { body, ms: Date.now() - t0, answeredMs, tries, status, firstRefusal };
}

/** Deletes an instance (its workspace stays) and waits until its Pod is gone. */
// biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
async function gone(body: any): Promise<void> {
  await deleteInstance(body.name);
  await eventually(
    async () => ((await readPod(podNameOf(body))) ? undefined : true),
    "its pod gone",
  );
}

describe("warm pool on the real node: a claim and cold starts, through the gateway", () => {
  const results: Record<string, unknown> = {};
  afterAll(async () => {
    mkdirSync(resolve(OUT, ".."), { recursive: true });
    writeFileSync(
      OUT,
      `${JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2)}\n`,
    );
  });

  /**
   * Waits for a settled pool: POOL_SIZE members (as deployed), each one the kubelet sees
   * answering. A claim is then timed on its own, not against a member's start: on this
   * 2-core node a new gptme-server takes a core for about two seconds.
   */
  const poolSettled = () => {
    const size = Number(
      k(["get", "configmap", "fleet-config", "-n", NAMESPACE, "-o", "jsonpath={.data.POOL_SIZE}"]),
    );
    return eventually(
      async () => {
        const out = k(["get", "pods", "-n", NAMESPACE, "-l", "gptme.ai/pool=member", "-o", "json"]);
        const pods = JSON.parse(out).items as {
          metadata?: { deletionTimestamp?: string };
          status?: { conditions?: { type: string; status: string }[] };
        }[];
        const ready = pods.filter(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return size > 0 && ready.length >= size && ready.length === pods.length ? true : undefined;
      },
      "a settled pool",
      120_000,
      250,
    );
  };

  it("hands a new client a pool member, answered by the real gptme-server at once", async () => {
    // The pool as the CronJob fills it (the handler also refills after every claim).
    k(["create", "job", "-n", NAMESPACE, "--from=cronjob/fleet-reaper", `pool-fill-${Date.now()}`]);
    const runs: number[] = [];
    // Of each run: when GET /instances answered (the claim), before the gateway's first answer.
    const instanceAnswers: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await poolSettled();
      const { body, ms, answeredMs, tries, firstRefusal } = await firstAnswer(
        `e2e-pool-key-${Date.now()}-${i}`,
        "pooled",
      );
      expect(body).toMatchObject({ status: "ready", created: true, workspace: { state: "new" } });
      expect(podNameOf(body)).toMatch(/^gptme-pool-/);
      expect(tries, firstRefusal).toBe(1);
      runs.push(ms);
      instanceAnswers.push(answeredMs);
      // One node of 2 cores: each run's instance goes before the next (CPU requests add up).
      await gone(body);
    }
    results.pool = { runs, median: median(runs), p99: p99(runs), instanceAnswers };
    console.log(
      "pool claim, request to first answer through the gateway (ms):",
      runs,
      "of which GET /instances (ms):",
      instanceAnswers,
    );
  }, 600_000);

  it("starts a returning client's instance cold over its kept workspace, never from the pool", async () => {
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const key = `e2e-kept-key-${Date.now()}-${i}`;
      const first = await firstAnswer(key, "kept");
      // Its workspace stays when the instance goes (admin delete without purge).
      await gone(first.body);
      const again = await firstAnswer(key, "kept");
      expect(again.body.workspace).toEqual({ name: first.body.workspace.name, state: "kept" });
      expect(podNameOf(again.body)).toBe(again.body.name);
      runs.push(again.ms);
      await gone(again.body);
    }
    results.keptCold = { runs, median: median(runs), p99: p99(runs) };
    console.log("cold over a kept workspace (ms):", results.keptCold);
  }, 600_000);

  it("starts a new client's instance cold with the pool off, and times gptme-server's own start", async () => {
    const pool = poolOff();
    try {
      const runs: number[] = [];
      const own: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const traefik = inject("traefikUrl");
        const key = `e2e-nopool-key-${Date.now()}-${i}`;
        const t0 = Date.now();
        // Created without waiting, so its server's own start can be watched from outside.
        const created = await (
          await fetch(`${traefik}/api/v1/${key}/instances/nopool?wait=0`)
        ).json();
        const name = podNameOf(created);
        const answered = (async () => {
          for (;;) {
            const pod = await readPod(name);
            const ip = pod?.status?.podIP;
            if (ip) {
              const ok = await fetch(`http://${ip}:5700/api/v2/server/health`, {
                signal: AbortSignal.timeout(1_000),
              }).then(
                (r) => r.ok,
                () => false,
              );
              if (ok && pod) return { at: Date.now(), pod };
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        // As a client that does not wait: straight to the gateway, which holds the request
        // until the new instance's gptme-server answers.
        let status = 0;
        while (status !== 200 && Date.now() - t0 < 60_000) {
          const res = await fetch(`${traefik}${created.endpoint.path}/api/v2/conversations`, {
            headers: { authorization: `Bearer ${created.endpoint.token}` },
          });
          status = res.status;
          await res.body?.cancel();
        }
        expect(status).toBe(200);
        runs.push(Date.now() - t0);
        const { at, pod } = await answered;
        own.push(at - podStartedAt((await readPod(name)) ?? pod).container);
        await gone(created);
      }
      results.coldNoPool = { runs, median: median(runs), p99: p99(runs) };
      results.gptmeOwnStart = { runs: own, median: median(own), p99: p99(own) };
      console.log("cold, no pool (ms):", runs, "gptme-server's own start (ms):", own);
    } finally {
      pool.restore();
    }
  }, 600_000);
});
