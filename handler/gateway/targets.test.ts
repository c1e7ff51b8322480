import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { type ClientPod, KIND } from "../../shared/instance/clientpod.js";
import { mirrorAnnotations } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import { IDLE_MS, TARGET_TTL_MS, Targets } from "./targets.js";

const clientPod = (name: string): ClientPod =>
  ({
    metadata: { name, uid: `uid-${name}`, creationTimestamp: new Date(0) },
    spec: { clientId: "c1", instanceId: name, podTemplate: "t" },
    status: { lastActivity: new Date(0), phase: "Running" },
  }) as unknown as ClientPod;

const podOf = (cp: ClientPod): V1Pod => ({
  metadata: {
    name: cp.metadata.name,
    uid: `pod-${cp.metadata.name}`,
    labels: { "gptme.ai/client": "c1", "gptme.ai/instance": cp.spec.instanceId },
    annotations: mirrorAnnotations(cp),
    ownerReferences: [
      {
        apiVersion: "gptme.ai/v1",
        kind: KIND,
        name: cp.metadata.name,
        uid: cp.metadata.uid,
        controller: true,
      },
    ],
  },
  spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: 5700 }] }] },
  status: { phase: "Running", podIP: "127.0.0.9" },
});

/** A Kube answering from a fixed fleet, counting reads by kind. */
function fleet(names: string[]) {
  const reads = { clientPods: 0, pods: 0 };
  const cps = new Map(names.map((n) => [n, clientPod(n)]));
  const kube = {
    clientPods: {
      get: async (n: string) => {
        reads.clientPods++;
        return cps.get(n);
      },
    },
    pods: {
      get: async (n: string) => {
        reads.pods++;
        const cp = cps.get(n);
        return cp && podOf(cp);
      },
    },
  } as unknown as Kube;
  return { kube, reads };
}

describe("Targets", () => {
  it("keeps a lookup whole for its TTL, then only what reading its Pod again needs", async () => {
    const { kube, reads } = fleet(["a", "b"]);
    let now = 1_000_000;
    const targets = new Targets(kube, () => now);
    const first = await targets.get("a");
    expect(first.target?.pod?.host).toBe("127.0.0.9");
    expect(reads).toEqual({ clientPods: 1, pods: 1 });
    expect(targets.get("a")).toMatchObject({ cached: true });
    now += TARGET_TTL_MS;
    await targets.get("b"); // a later read: "a" is past its TTL and kept small
    expect(targets.cached("a")).toBeUndefined();
    const again = await targets.get("a");
    // The Pod alone, its record from the Pod's mirror.
    expect(reads).toEqual({ clientPods: 2, pods: 3 });
    expect(again.target?.record.uid).toBe("uid-a");
    expect(again.target?.pod?.host).toBe("127.0.0.9");
    expect(targets.size.found).toBe(2);
  });

  it("forgets a name not used for IDLE_MS, and an instance under every name", async () => {
    const { kube, reads } = fleet(["a", "b", "c"]);
    let now = 1_000_000;
    const targets = new Targets(kube, () => now);
    await targets.get("a");
    now += TARGET_TTL_MS;
    await targets.get("b");
    now += IDLE_MS;
    await targets.get("c"); // "a" and "b" idle: dropped
    expect(targets.size.found).toBe(1);
    await targets.get("a");
    expect(reads.clientPods).toBe(4); // looked up by its instance again
    now += TARGET_TTL_MS;
    await targets.get("b");
    targets.forgetInstance("a"); // known past its TTL: forgotten too
    expect(targets.size.found).toBe(2);
    await targets.get("a");
    expect(reads.clientPods).toBe(6);
  });
});
