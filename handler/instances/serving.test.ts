import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { ANNOTATION_PHASE } from "../../shared/instance/record.js";
import { ANNOTATION_SERVING_SINCE, isServing } from "../../shared/instance/serving.js";
import type { Kube } from "../../shared/kube/client.js";
import { ServingProbes } from "./serving.js";

// The poller against a real HTTP server on loopback; the Kubernetes side is what the test is
// not about, so it is a stand-in that records the one write a sighting makes.
let server: Server | undefined;
afterEach(
  () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
);

/** A server that answers healthy from `answerAfterMs` after `startedAt` on. */
async function healthServer(
  answerAfterMs: number,
): Promise<{ port: number; asks: () => number; startedAt: number }> {
  const started = Date.now();
  let asks = 0;
  server = createServer((req, res) => {
    asks++;
    const up = Date.now() - started >= answerAfterMs && req.url === "/api/v2/server/health";
    res.writeHead(up ? 200 : 503, { connection: "close" }).end("{}");
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, asks: () => asks, startedAt: started };
}

function podAt(port: number): V1Pod {
  return {
    metadata: { name: "gptme-client-0123456789abcdef", uid: "u-1", resourceVersion: "1" },
    spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: port }] }] },
    status: { phase: "Running", podIP: "127.0.0.1" },
  };
}

function recordingKube() {
  const writes: object[] = [];
  const kube = {
    pods: {
      patchIfSame: async (_name: string, _uid: string, patch: { metadata: object }) => {
        writes.push(patch);
        const pod = podAt(0);
        return { ...pod, metadata: { ...pod.metadata, ...patch.metadata } };
      },
    },
  } as unknown as Kube;
  return { kube, writes };
}

describe("ServingProbes", () => {
  it("answers every waiter once the server answers, with one poller and one write", async () => {
    const { port, asks, startedAt } = await healthServer(300);
    const { kube, writes } = recordingKube();
    const probes = new ServingProbes({ kube, pollMs: 50 });
    const pod = podAt(port);
    const waits = Array.from({ length: 20 }, () =>
      probes.waitUntilServing(pod, Date.now() + 5_000),
    );
    expect(probes.polling).toBe(1);
    const results = await Promise.all(waits);
    // From when the server's 300 ms began (it was listening a moment later under load).
    const took = Date.now() - startedAt;
    expect(results.every((p) => p && isServing(p))).toBe(true);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(600);
    // One poller: about one ask per interval, not one per waiter.
    expect(asks()).toBeLessThan(15);
    expect(writes).toEqual([
      { metadata: { annotations: { [ANNOTATION_SERVING_SINCE]: expect.any(String) } } },
    ]);
    // Seen once: a later request for the same Pod (read from a stale cache) needs no ask.
    const before = asks();
    expect(isServing((await probes.waitUntilServing(pod, Date.now() + 5_000)) as V1Pod)).toBe(true);
    expect(asks()).toBe(before);
  });

  it("records the phase with the sighting for a waiter that writes it on the ClientPod", async () => {
    const { port } = await healthServer(100);
    const { kube, writes } = recordingKube();
    const probes = new ServingProbes({ kube, pollMs: 20 });
    const pod = podAt(port);
    const [plain, writer] = await Promise.all([
      probes.waitUntilServing(pod, Date.now() + 5_000),
      probes.waitUntilServing(pod, Date.now() + 5_000, { writesPhase: true }),
    ]);
    expect(writes).toEqual([
      {
        metadata: {
          annotations: {
            [ANNOTATION_SERVING_SINCE]: expect.any(String),
            [ANNOTATION_PHASE]: "Running",
          },
        },
      },
    ]);
    expect(writer?.metadata?.annotations?.[ANNOTATION_PHASE]).toBe("Running");
    expect(plain).toEqual(writer);
  });

  it("records no phase once the waiter that would write it has given up", async () => {
    const { port } = await healthServer(300);
    const { kube, writes } = recordingKube();
    const probes = new ServingProbes({ kube, pollMs: 20 });
    const pod = podAt(port);
    const writer = probes.waitUntilServing(pod, Date.now() + 100, { writesPhase: true });
    const later = probes.waitUntilServing(pod, Date.now() + 5_000);
    expect(isServing((await writer) ?? pod)).toBe(false);
    expect(isServing((await later) ?? pod)).toBe(true);
    expect(writes).toEqual([
      { metadata: { annotations: { [ANNOTATION_SERVING_SINCE]: expect.any(String) } } },
    ]);
  });

  it("gives each waiter up at its own deadline while a later one keeps the poller going", async () => {
    const { port } = await healthServer(700);
    const { kube } = recordingKube();
    const probes = new ServingProbes({ kube, pollMs: 50 });
    const pod = podAt(port);
    const short = probes.waitUntilServing(pod, Date.now() + 200);
    const long = probes.waitUntilServing(pod, Date.now() + 5_000);
    const first = await short;
    expect(first && isServing(first)).toBe(false);
    expect(probes.polling).toBe(1);
    const second = await long;
    expect(second && isServing(second)).toBe(true);
  });

  it("returns the Pod as it was when nothing answers in time, and writes nothing", async () => {
    const { port } = await healthServer(60_000);
    const { kube, writes } = recordingKube();
    const probes = new ServingProbes({ kube, pollMs: 50 });
    const pod = podAt(port);
    expect(await probes.waitUntilServing(pod, Date.now() + 300)).toBe(pod);
    expect(writes).toEqual([]);
  });

  it("answers a waiter whose deadline comes first with the Pod as last read: its new IP", async () => {
    const { port } = await healthServer(60_000);
    const { kube } = recordingKube();
    const withIp = podAt(port);
    const withoutIp: V1Pod = { ...withIp, status: { phase: "Pending" } };
    // The watch sees the Pod get its IP a moment after the request began waiting.
    (kube.pods as unknown as { waitFor: () => Promise<V1Pod> }).waitFor = async () => withIp;
    const probes = new ServingProbes({ kube, pollMs: 50 });
    const answered = await probes.waitUntilServing(withoutIp, Date.now() + 300);
    expect(answered?.status?.podIP).toBe("127.0.0.1");
    expect(answered && isServing(answered)).toBe(false);
  });
});
