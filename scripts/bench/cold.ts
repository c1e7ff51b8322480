import type { V1Pod } from "@kubernetes/client-node";
import { SERVING_POLL_MS } from "../../handler/instances/serving.js";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { buildPod } from "../../shared/instance/pod-spec.js";
import { isPodReady } from "../../shared/instance/pod-status.js";
import { answersHealth, healthUrlOf } from "../../shared/instance/serving.js";
import { workspacePvc } from "../../shared/instance/workspace.js";
import {
  adminKube,
  answerHealth,
  apiCalls,
  createNamespace,
  deleteNamespace,
  httpGet,
  installFleetQuota,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

export interface ColdResult {
  mode: string;
  handler: Stats;
  baseline: Stats;
  callsPerRequest: number;
}

/**
 * Time from request to ready answer for new instances, one at a time and `burst` at once;
 * baseline: creating the same objects a Pod needs directly (its workspace claim, then the
 * Pod that mounts it), waiting (watch) for Ready, then until its server answers (what the
 * fleet's "ready" means), asked every SERVING_POLL_MS as the fleet asks.
 */
export async function coldPath(sequential: number, burst: number): Promise<ColdResult[]> {
  const namespace = await createNamespace("bench-cold");
  const health = answerHealth(namespace);
  await installTemplate(namespace);
  await installFleetQuota(namespace, 200);
  const handler = await startHandler(namespace, {
    MAX_INSTANCES_PER_CLIENT: "1000",
    MAX_INSTANCES: "200",
  });
  const kube = adminKube(namespace);
  try {
    const template = await kube.podTemplates.get("gptme-client");
    if (!template) throw new Error("no template");
    // The same claim and Pod the handler makes, minus the owner (which would make it the GC's).
    const owner = {
      metadata: {
        name: "x",
        uid: "x",
        namespace,
        resourceVersion: "1",
        creationTimestamp: new Date(),
      },
      spec: { clientId: "0".repeat(32), instanceId: "x", podTemplate: "gptme-client" },
    } as ClientPod;
    const direct = async (name: string) => {
      const claim = workspacePvc(
        { name, uid: "x", clientId: owner.spec.clientId, instanceId: "x" },
        { size: "1Gi", storageClass: undefined },
        new Date(),
      );
      if (!(await kube.workspaces.create(claim)).created) throw new Error("baseline claim exists");
      const pod: V1Pod = buildPod(
        template,
        { ...owner, metadata: { ...owner.metadata, name } },
        {
          annotations: {},
          resources: { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi" },
          workspacePvc: name,
        },
      );
      pod.metadata = { ...pod.metadata, ownerReferences: undefined };
      const created = await kube.pods.create(pod);
      if (!created.created) throw new Error("baseline pod exists");
      const ready = await kube.pods.waitFor(created.object, isPodReady, 30_000);
      if (!ready || !isPodReady(ready)) throw new Error("baseline pod not ready");
      // Ready, as the fleet means it: its server answers (asked as often as the fleet asks).
      const url = healthUrlOf(ready);
      for (let asked = 0; !(url && (await answersHealth(url, 1_000))); asked++) {
        if (asked > 300) throw new Error("baseline pod's server never answered");
        await new Promise((r) => setTimeout(r, SERVING_POLL_MS));
      }
    };
    let failures = 0;
    const viaHandler = (key: string) => async (i: number) => {
      const res = await httpGet(`${handler.url}/instances/c${i}?wait=30`, { "x-api-key": key });
      if (res.status !== 200) failures++;
    };

    const results: ColdResult[] = [];
    for (const [mode, total, concurrency] of [
      ["1 at a time", sequential, 1],
      [`${burst} at once`, burst, burst],
    ] as const) {
      say(`cold: ${mode}`);
      const tag = concurrency === 1 ? "s" : "b";
      const baseline = await closedLoop(total, concurrency, (i) => direct(`baseline-${tag}-${i}`));
      const before = await apiCalls(handler.url);
      const measured = await closedLoop(
        total,
        concurrency,
        viaHandler(`bench-cold-key-${tag}0001`),
      );
      if (failures > 0) throw new Error(`cold: ${failures} requests were not ready in time`);
      results.push({
        mode,
        baseline: stats(baseline.latencies),
        handler: stats(measured.latencies),
        callsPerRequest: ((await apiCalls(handler.url)) - before) / total,
      });
    }
    return results;
  } finally {
    kube.close();
    await handler.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
