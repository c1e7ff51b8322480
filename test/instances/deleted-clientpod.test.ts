import { CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminKubeConfig, createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const KEY = "deleted-key-0000001";
const SAMPLES = 5;
/** The longest the garbage collector took to reach the Pod, with room for a loaded machine. */
const WINDOW_BOUND_MS = 3_000;

// A warm request reads only the Pod (one cached GET). When someone deletes a ClientPod with
// kubectl (not through the fleet, which deletes the Pod itself right after), the Pod learns
// of it only when the garbage collector acts on it: it marks it deleted (Background,
// Foreground) or removes its owner reference (Orphan). Until then the warm path still
// answers "ready" from it; these tests measure that window and bound it.
describe("a warm request after its ClientPod was deleted outside the fleet", () => {
  let namespace: string;
  let handler: TestHandler;
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const figures: string[] = [];

  beforeAll(async () => {
    namespace = await createTestNamespace("gcwindow");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: "50" });
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
    if (figures.length)
      console.info(`warm-path window after a ClientPod delete:\n  ${figures.join("\n  ")}`);
  });

  it.each(["Background", "Foreground", "Orphan"] as const)(
    "kubectl delete --cascade=%s: the old Pod stops being answered as ready once the garbage collector reaches it",
    async (propagationPolicy) => {
      const windows: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const id = `${propagationPolicy.toLowerCase()}-${i}`;
        const first = await handler.request(`/instances/${id}?wait=30`, { apiKey: KEY });
        expect(first.status).toBe(200);
        const { name } = await first.json();
        // Warm, and still one read, once the Pod's phase is recorded: a request that finds
        // the Pod Running after the cold path answered (KWOK's status can trail the server's
        // first answer) writes it once (PHASE follows the Pod).
        await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY });
        handler.counter.reset();
        expect(
          (await (await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY })).json()).status,
        ).toBe("ready");
        expect(handler.counter.calls).toEqual(["get pods"]);

        const deletedAt = Date.now();
        await custom.deleteNamespacedCustomObject({
          group: "gptme.ai",
          version: "v1",
          namespace,
          plural: "clientpods",
          name,
          propagationPolicy,
        });
        for (;;) {
          const body = await (
            await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY })
          ).json();
          if (body.status !== "ready") break;
          expect(Date.now() - deletedAt).toBeLessThan(WINDOW_BOUND_MS);
        }
        windows.push(Date.now() - deletedAt);
      }
      windows.sort((a, b) => a - b);
      figures.push(
        `${propagationPolicy}: median ${windows[Math.floor(SAMPLES / 2)]} ms, max ${windows.at(-1)} ms over ${SAMPLES} deletes (${windows.join(", ")})`,
      );
    },
  );
});
