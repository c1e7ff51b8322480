import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  core,
  deleteInstance,
  eventually,
  getInstance,
  handlerPods,
  k,
  killContainer,
  NAMESPACE,
  readPod,
} from "./support/fleet.js";
import { countBy, runLoad } from "./support/load.js";

const WARM_KEY = "e2e-warm-key-000001";
const WARM_IDS = ["warm-a", "warm-b", "warm-c"];

/** Instances per (client, instance) pair, by their labels: more than one is a duplicate. */
async function instancesByPair(): Promise<Map<string, number>> {
  const pods = await core().listNamespacedPod({
    namespace: NAMESPACE,
    // Instances' Pods: warm-pool members (no client yet) are not instances.
    labelSelector: "app.kubernetes.io/managed-by=gptme-fleet,!gptme.ai/pool",
  });
  const pairs = new Map<string, number>();
  for (const pod of pods.items) {
    if (pod.metadata?.deletionTimestamp) continue;
    const labels = pod.metadata?.labels ?? {};
    const pair = `${labels["gptme.ai/client"]}/${labels["gptme.ai/instance"]}`;
    pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
  }
  return pairs;
}

// Two handler replicas behind Traefik, real pods, real failures.
describe("the handler under failures, on the real node", () => {
  const made = new Set<string>();
  const warmNames = new Set<string>();

  beforeAll(async () => {
    for (const id of WARM_IDS) {
      const { status, body } = await getInstance(WARM_KEY, id);
      expect(status, JSON.stringify(body)).toBe(200);
      made.add(body.name);
      warmNames.add(body.name);
    }
  });

  afterAll(async () => {
    for (const name of made) await deleteInstance(name);
  });

  it("loses no answered request and duplicates no instance when a handler pod is killed mid-load", async () => {
    // New instances (two clients, two each) and warm ones, asked for again and again.
    const paths = [
      ...WARM_IDS.map((id) => `/api/v1/${WARM_KEY}/instances/${id}?wait=0`),
      ...["e2e-kill-key-00000a", "e2e-kill-key-00000b"].flatMap((key) =>
        ["kill-1", "kill-2"].map((id) => `/api/v1/${key}/instances/${id}?wait=5`),
      ),
    ];
    const victim = (await handlerPods())[0];
    if (!victim) throw new Error("no handler pod");
    let done: () => void = () => {};
    const until = new Promise<void>((r) => {
      done = r;
    });
    const load = runLoad(paths, { workers: 4, maxRequests: 2_000, until });
    await new Promise((r) => setTimeout(r, 1_500));
    killContainer(victim);
    // Load goes on while the kubelet restarts the container and it becomes Ready again.
    await eventually(
      async () => {
        const status = (await readPod(victim.metadata?.name ?? ""))?.status?.containerStatuses?.[0];
        return (status?.restartCount ?? 0) >= 1 && status?.ready ? true : undefined;
      },
      "the killed handler restarted and Ready again",
      90_000,
    );
    await new Promise((r) => setTimeout(r, 1_500));
    done();
    const outcomes = await load;
    for (const o of outcomes) if (o.name) made.add(o.name);
    const counts = countBy(outcomes);
    console.log("kill mid-load, answers by status:", counts);

    // Every instance a 2xx answer named exists (ClientPod and Pod), and only once.
    const answered = new Map(
      outcomes.filter((o) => o.status < 300 && o.name).map((o) => [o.name, o.pod]),
    );
    expect(answered.size).toBeGreaterThanOrEqual(WARM_IDS.length);
    for (const [name, pod] of answered) {
      expect(k(["get", "clientpod", name as string, "-n", NAMESPACE, "-o", "name"]).trim()).toBe(
        `clientpod.gptme.ai/${name}`,
      );
      expect(k(["get", "pod", pod as string, "-n", NAMESPACE, "-o", "name"]).trim()).toBe(
        `pod/${pod}`,
      );
    }
    for (const [pair, count] of await instancesByPair()) expect(count, pair).toBe(1);

    // The node has 2 CPUs and each instance requests 250m: free them for the next test's
    // surge pod (a rollout waits, Pending, while the node is full).
    const names = k(["get", "clientpods", "-n", NAMESPACE, "-o", "name"]).split("\n");
    for (const ref of names) {
      const name = ref.replace(/^clientpod\.gptme\.ai\//, "");
      if (name && !warmNames.has(name)) await deleteInstance(name);
    }
    await eventually(
      async () => ((await instancesByPair()).size <= WARM_IDS.length ? true : undefined),
      "the new instances' pods to be gone",
      60_000,
    );
  });

  it("answers no 5xx during a rolling restart of the Deployment under load", async () => {
    const paths = WARM_IDS.map((id) => `/api/v1/${WARM_KEY}/instances/${id}?wait=0`);
    const before = new Set((await handlerPods()).map((p) => p.metadata?.uid));
    let done: () => void = () => {};
    const until = new Promise<void>((r) => {
      done = r;
    });
    const load = runLoad(paths, { workers: 4, maxRequests: 20_000, until });
    k(["rollout", "restart", "deployment/fleet-handler", "-n", NAMESPACE]);
    k(["rollout", "status", "deployment/fleet-handler", "-n", NAMESPACE, "--timeout=300s"]);
    // Old pods finish their preStop pause and drain after the rollout reports done.
    await new Promise((r) => setTimeout(r, 10_000));
    done();
    const outcomes = await load;
    const counts = countBy(outcomes);
    console.log("rolling restart, answers by status:", counts);
    const after = await handlerPods();
    expect(after.every((p) => !before.has(p.metadata?.uid))).toBe(true);
    expect(outcomes.length).toBeGreaterThan(100);
    expect(outcomes.filter((o) => o.status === 0 || o.status >= 500)).toEqual([]);
  });
});
