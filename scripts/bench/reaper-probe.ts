import type { AddressInfo } from "node:net";
import { CoreV1Api } from "@kubernetes/client-node";
import pLimit from "p-limit";
import {
  API_VERSION,
  clientPodManifest,
  KIND,
  MANAGED_SELECTOR,
} from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { mergePatch } from "./fast-api.js";
import { adminKube, adminKubeConfig, createNamespace, deleteNamespace, say } from "./lib.js";
import { type TimedPass, timedReaperPass } from "./reaper.js";
import { idleServer } from "./scale-nodes.js";

export interface ProbeBenchRun {
  instances: number;
  candidates: number;
  noProbe: TimedPass;
  probe: TimedPass;
  /** Requests the stand-in listener answered during the probing pass (two per candidate). */
  probesAnswered: number;
  setupSeconds: number;
}

const CONCURRENCY = ["--concurrency", "20"];

/**
 * The reaper's probe at scale: `instances` ClientPods, each with its Pod, half of them idle
 * candidates. Every Pod's IP is 127.0.0.1 and its `http` port one tiny listener that answers
 * the health and metrics paths as an idle gptme-server does: a stand-in for thousands of
 * servers (one process answers them all). The Pods have a scheduler nobody runs, so no node
 * takes them and their status (IP) is ours to write; deleting them is immediate.
 *
 * One pass with --no-probe, the idle half made again under new names, then one pass probing:
 * the same fleet for both, in one run.
 */
export async function reaperProbeAtScale(instances: number): Promise<ProbeBenchRun> {
  const stand = await idleServer("127.0.0.1", 0);
  const { port } = stand.server.address() as AddressInfo;
  const namespace = await createNamespace("bench-reaper-probe");
  const kube = adminKube(namespace);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const limit = pLimit(32);
  const idleSince = new Date(Date.now() - 2 * 3600_000).toISOString();

  /** An instance as the handler leaves it: ClientPod, status, its Pod running at the listener. */
  const instance = async (i: number, idle: boolean) => {
    const clientId = clientIdOf(`bench-key-${i % 1000}`);
    const name = instanceNameOf(clientId, `i${i}`);
    const made = await kube.clientPods.create(
      clientPodManifest({ name, clientId, instanceId: `i${i}`, podTemplate: "gptme-client" }),
    );
    if (!made.created) throw new Error(`${name} exists`);
    await kube.clientPods.patchStatus(name, {
      lastActivity: idle ? idleSince : new Date().toISOString(),
    });
    await kube.pods.create({
      metadata: {
        name,
        labels: { "app.kubernetes.io/managed-by": "gptme-fleet", "gptme.ai/client": clientId },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: KIND,
            name,
            uid: made.object.metadata.uid,
            controller: true,
          },
        ],
      },
      spec: {
        schedulerName: "bench-unscheduled",
        containers: [
          { name: "gptme-server", image: "x", ports: [{ name: "http", containerPort: port }] },
        ],
      },
    });
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: { status: { phase: "Running", podIP: "127.0.0.1", podIPs: [{ ip: "127.0.0.1" }] } },
      },
      mergePatch,
    );
  };
  const make = async (indices: number[], what: string) => {
    let done = 0;
    await Promise.all(
      indices.map((i) =>
        limit(async () => {
          await instance(i, i % 2 === 0);
          if (++done % 2000 === 0) say(`reaper-probe:   ${what} ${done}/${indices.length}`);
        }),
      ),
    );
  };

  try {
    const setupStarted = performance.now();
    say(`reaper-probe: ${instances} instances with Pods in ${namespace}, half idle for 2 h`);
    await make(
      Array.from({ length: instances }, (_, i) => i),
      "made",
    );
    let setupSeconds = (performance.now() - setupStarted) / 1000;

    say("reaper-probe: one pass with --no-probe");
    const noProbe = await timedReaperPass(namespace, [...CONCURRENCY, "--no-probe"]);

    const again = performance.now();
    say("reaper-probe: the idle half again, under new names");
    await waitForPods(core, namespace, instances / 2);
    await make(
      Array.from({ length: instances / 2 }, (_, k) => instances + 2 * k),
      "made again",
    );
    setupSeconds += (performance.now() - again) / 1000;

    say("reaper-probe: one pass probing");
    const answeredBefore = stand.answered();
    const probe = await timedReaperPass(namespace, CONCURRENCY);
    return {
      instances,
      candidates: instances / 2,
      noProbe,
      probe,
      probesAnswered: stand.answered() - answeredBefore,
      setupSeconds,
    };
  } finally {
    kube.close();
    stand.server.close();
    say(`reaper-probe: deleting ${namespace}`);
    await deleteNamespace(namespace);
  }
}

/** Until the garbage collector has taken the deleted instances' Pods. */
async function waitForPods(core: CoreV1Api, namespace: string, count: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    let total = 0;
    let token: string | undefined;
    do {
      const page = await core.listNamespacedPod({
        namespace,
        labelSelector: MANAGED_SELECTOR,
        limit: 500,
        _continue: token,
      });
      total += page.items.length;
      token = page.metadata?._continue || undefined;
    } while (token);
    if (total <= count) return;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error("the deleted instances' Pods did not go");
}
