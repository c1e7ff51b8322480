import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, loadYaml, type V1PodTemplate } from "@kubernetes/client-node";
import {
  adminKubeConfig,
  answerHealth,
  apiCalls,
  type BenchHandler,
  createNamespace,
  deleteNamespace,
  httpGet,
  ROOT,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

/** One path's figures, plans on against off, measured in the same run. */
export interface PlansRow {
  path: string;
  on: Stats & { rps: number; calls: number };
  off: Stats & { rps: number; calls: number };
}

const WARM_INSTANCES = 16;
const ROUNDS = 3;
const PLANS = `
default: free
plans:
  free: {template: gptme-client, maxInstancesPerClient: 1000}
  pro: {template: gptme-client-pro, maxInstancesPerClient: 1000, idleTimeout: 2h, workspaceSize: 2Gi}
`;

/**
 * The warm and cold paths with plans on (PLANS_FILE with two plans, the client's key naming
 * `pro`, made from its own template) against off (no PLANS_FILE: the one plan `default`),
 * both with API keys from a file (CLIENT_AUTH=keys), two handler processes in one namespace,
 * the rounds alternating so that drift on this shared machine falls on both alike.
 */
export async function plansBench(warmRequests: number, coldPerRound: number): Promise<PlansRow[]> {
  const namespace = await createNamespace("bench-plans");
  const health = answerHealth(namespace);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const template = loadYaml<V1PodTemplate>(
    readFileSync(join(ROOT, "k8s/local/fleet-operator/05-podtemplate-gptme-client.yaml"), "utf8"),
  );
  for (const name of ["gptme-client", "gptme-client-pro"]) {
    await core.createNamespacedPodTemplate({
      namespace,
      body: { ...template, metadata: { name } },
    });
  }
  const dir = mkdtempSync(join(tmpdir(), "bench-plans-"));
  writeFileSync(join(dir, "plans.yaml"), PLANS);
  writeFileSync(join(dir, "keys-on"), "bench-plans-on-key-01 pro\n");
  writeFileSync(join(dir, "keys-off"), "bench-plans-off-key-1\n");
  const base = { CLIENT_AUTH: "keys", MAX_INSTANCES: "2000", MAX_INSTANCES_PER_CLIENT: "1000" };
  const handlers: Record<"on" | "off", { handler: BenchHandler; key: string }> = {
    on: {
      handler: await startHandler(namespace, {
        ...base,
        API_KEYS_FILE: join(dir, "keys-on"),
        PLANS_FILE: join(dir, "plans.yaml"),
      }),
      key: "bench-plans-on-key-01",
    },
    off: {
      handler: await startHandler(namespace, { ...base, API_KEYS_FILE: join(dir, "keys-off") }),
      key: "bench-plans-off-key-1",
    },
  };
  const get = async (mode: "on" | "off", id: string, wait: number) => {
    const { handler, key } = handlers[mode];
    const res = await httpGet(`${handler.url}/instances/${id}?wait=${wait}`, { "x-api-key": key });
    if (res.status !== 200)
      throw new Error(`plans ${mode}: ${id} answered ${res.status} ${res.body}`);
  };
  try {
    const rows: PlansRow[] = [];
    // Warm: ready instances, the same requests through each handler.
    for (const mode of ["on", "off"] as const) {
      for (let i = 0; i < WARM_INSTANCES; i++) await get(mode, `w${i}`, 30);
    }
    for (const concurrency of [1, 16]) {
      say(`plans: warm, concurrency ${concurrency}`);
      const runs = { on: new Pooled(), off: new Pooled() };
      for (const mode of ["on", "off"] as const) {
        await closedLoop(300, concurrency, (i) => get(mode, `w${i % WARM_INSTANCES}`, 30));
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
          const before = await apiCalls(handlers[mode].handler.url);
          runs[mode].add(
            await closedLoop(warmRequests / ROUNDS, concurrency, (i) =>
              get(mode, `w${i % WARM_INSTANCES}`, 30),
            ),
            (await apiCalls(handlers[mode].handler.url)) - before,
          );
        }
      }
      rows.push({ path: `warm, c=${concurrency}`, on: runs.on.summary(), off: runs.off.summary() });
    }
    // Cold: new instances one at a time, the modes taking turns.
    say("plans: cold, 1 at a time");
    const cold = { on: new Pooled(), off: new Pooled() };
    let next = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
        const first = next;
        next += coldPerRound;
        const before = await apiCalls(handlers[mode].handler.url);
        cold[mode].add(
          await closedLoop(coldPerRound, 1, (i) => get(mode, `c${first + i}`, 30)),
          (await apiCalls(handlers[mode].handler.url)) - before,
        );
      }
    }
    rows.push({ path: "cold, 1 at a time", on: cold.on.summary(), off: cold.off.summary() });
    return rows;
  } finally {
    await handlers.on.handler.stop();
    await handlers.off.handler.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}

/** Latencies, time and API calls of one mode, pooled over its rounds. */
class Pooled {
  private readonly latencies: number[] = [];
  private seconds = 0;
  private calls = 0;

  add(run: { latencies: number[]; seconds: number }, calls: number): void {
    this.latencies.push(...run.latencies);
    this.seconds += run.seconds;
    this.calls += calls;
  }

  summary(): Stats & { rps: number; calls: number } {
    return {
      ...stats(this.latencies),
      rps: this.latencies.length / this.seconds,
      calls: this.calls / this.latencies.length,
    };
  }
}
