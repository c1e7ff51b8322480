import { createServer, type Server } from "node:http";
import type { CoreV1Api } from "@kubernetes/client-node";
import { instancePortOf } from "../../shared/instance/pod-spec.js";
import { HEALTH_PATH } from "../../shared/instance/serving.js";

/** What gptme-server 0.35.1 answers on its health endpoint when idle (docs/operations.md, "Is it working? The probe"). */
const IDLE_HEALTH = JSON.stringify({
  generating_count: 0,
  health: "green",
  idle_count: 0,
  session_count: 0,
  slots: [],
});

export interface PodHealth {
  /** Pod names answered for so far. */
  answered: Set<string>;
  stop(): Promise<void>;
}

/**
 * A kubelet's part for tests and benchmarks about the fleet's bookkeeping (limits, listing, deletes, claims), where
 * a real gptme-server per instance would cost seconds and 114 MB each and test nothing more:
 * for every Pod of the namespace with a loopback IP, something answers gptme-server's health
 * check (and only that; any other path is 404) at the pod IP and `http` port, from `delayMs`
 * after the Pod got its IP, until the Pod is gone. The fleet calls an instance ready only once
 * its server answers (README, "Ready means gptme-server answers"). Tests of what gptme-server
 * does run the real one (test/support/gptme.ts) and must not use this in the same namespace.
 */
export function answerPodHealth(
  core: CoreV1Api,
  namespace: string,
  /** `fieldSelector`: only those Pods (e.g. one node's, which the API server finds by index). */
  { delayMs = 0, fieldSelector }: { delayMs?: number; fieldSelector?: string } = {},
): PodHealth {
  const servers = new Map<string, { server: Server; address: string; name: string }>();
  const firstSeen = new Map<string, number>();
  const answered = new Set<string>();
  let stopped = false;

  const close = (uid: string) => {
    const entry = servers.get(uid);
    servers.delete(uid);
    return new Promise<void>((resolve) =>
      entry ? entry.server.close(() => resolve()) : resolve(),
    );
  };

  const tick = async () => {
    const pods = await core.listNamespacedPod({ namespace, fieldSelector }).catch(() => undefined);
    if (!pods) return;
    const live = new Set<string>();
    for (const pod of pods.items) {
      const uid = pod.metadata?.uid ?? "";
      const name = pod.metadata?.name ?? "";
      const ip = pod.status?.podIP;
      const ended = pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded";
      // Only loopback pod IPs: never an address this machine does not own.
      if (!ip || !/^127\.\d+\.\d+\.\d+$/.test(ip) || pod.metadata?.deletionTimestamp || ended)
        continue;
      live.add(uid);
      if (!firstSeen.has(uid)) firstSeen.set(uid, Date.now());
      if (servers.has(uid) || Date.now() - (firstSeen.get(uid) ?? 0) < delayMs) continue;
      const address = `${ip}:${instancePortOf(pod)}`;
      // A pod IP is reused once its pod is gone: free it before answering for the new one.
      for (const [other, entry] of servers) if (entry.address === address) await close(other);
      const server = createServer((req, res) => {
        const ok = req.url === HEALTH_PATH;
        if (ok) answered.add(name);
        res.writeHead(ok ? 200 : 404, { "content-type": "application/json", connection: "close" });
        res.end(ok ? IDLE_HEALTH : "{}");
      });
      const listening = await new Promise<boolean>((resolve) => {
        server.once("error", () => resolve(false));
        server.listen(instancePortOf(pod), ip, () => resolve(true));
      });
      if (listening) servers.set(uid, { server, address, name });
    }
    for (const uid of [...servers.keys()]) if (!live.has(uid)) await close(uid);
  };

  const loop = (async () => {
    while (!stopped) {
      await tick();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  return {
    answered,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all([...servers.keys()].map(close));
    },
  };
}
