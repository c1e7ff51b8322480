import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { deleteInstance, eventually, k, NAMESPACE, podNameOf, readPod } from "./support/fleet.js";
import { DEFAULT_KEY, deployModelPlan, MODEL_KEY, type ModelPlan } from "./support/plans.js";

const OUT = resolve(import.meta.dirname, "../../.bench/real-node-plans-timings.json");
const RUNS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

// A pool per plan on the real node, as the pool e2e times the pool: a new client of each plan
// gets a member of its own plan's pool (made from that plan's template), answered by its real
// gptme-server through the gateway at once; claims timed from a settled pool.

/** Members of a plan that the kubelet sees Ready, once as many as the plan keeps are. */
function settled(plan: string, size: number) {
  return eventually(
    async () => {
      const pods = JSON.parse(
        k([
          "get",
          "pods",
          "-n",
          NAMESPACE,
          "-l",
          `gptme.ai/pool=member,gptme.ai/plan=${plan}`,
          "-o",
          "json",
        ]),
      ).items as {
        metadata?: { deletionTimestamp?: string };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
      const ready = pods.filter(
        (p) =>
          !p.metadata?.deletionTimestamp &&
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return ready.length >= size && ready.length === pods.length ? true : undefined;
    },
    `the ${plan} plan's pool to settle`,
    180_000,
    250,
  );
}

/** From the request to gptme-server's first answer through the gateway, as pool.test.ts times it. */
async function firstAnswer(key: string, id: string) {
  const traefik = inject("traefikUrl");
  const t0 = Date.now();
  const res = await fetch(`${traefik}/api/v1/${key}/instances/${id}?wait=60`);
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  const body: any = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  const answeredMs = Date.now() - t0;
  let status = 0;
  while (status !== 200 && Date.now() - t0 < 60_000) {
    const answer = await fetch(`${traefik}${body.endpoint.path}/api/v2`, {
      headers: { authorization: `Bearer ${body.endpoint.token}` },
    });
    status = answer.status;
    if (status === 200) body.root = await answer.json();
    else await answer.body?.cancel();
  }
  return { body, ms: Date.now() - t0, answeredMs };
}

describe("a warm pool per plan on the real node", () => {
  let plan: ModelPlan;
  const results: Record<string, unknown> = {};

  beforeAll(async () => {
    plan = await deployModelPlan({ defaultPool: 1, modelPool: 1 });
  });

  afterAll(async () => {
    plan?.restore();
    mkdirSync(resolve(OUT, ".."), { recursive: true });
    writeFileSync(
      OUT,
      `${JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2)}\n`,
    );
  });

  it("hands each plan's new client a member of its own plan, from its template, at once", async () => {
    for (const [key, name] of [
      [MODEL_KEY, "model"],
      [DEFAULT_KEY, "default"],
    ] as const) {
      const runs: number[] = [];
      const claims: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        await settled(name, 1);
        const { body, ms, answeredMs } = await firstAnswer(key, `pooled-${i}`);
        expect(body).toMatchObject({ plan: name, status: "ready", created: true });
        expect(podNameOf(body)).toMatch(/^gptme-pool-/);
        const pod = await readPod(podNameOf(body));
        expect(pod?.metadata?.labels?.["gptme.ai/plan"]).toBe(name);
        const env = pod?.spec?.containers[0]?.env?.map((e) => e.name) ?? [];
        // Made from its plan's template: only the model plan's gives gptme-server a model.
        expect(env.includes("GPTME_CLOUD_API_KEY")).toBe(name === "model");
        expect(body.root.provider_configured).toBe(name === "model");
        runs.push(ms);
        claims.push(answeredMs);
        // One node of 2 cores: each run's instance goes before the next.
        await deleteInstance(body.name);
        await eventually(
          async () => ((await readPod(podNameOf(body))) ? undefined : true),
          "its pod gone",
        );
      }
      results[name] = { runs, median: median(runs), claims, claimsMedian: median(claims) };
      console.log(
        `pool claim, plan ${name}: first answer (ms)`,
        runs,
        "GET /instances (ms)",
        claims,
      );
    }
  }, 900_000);
});
