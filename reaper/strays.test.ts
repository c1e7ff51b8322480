import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { defaults, clientPod as instanceAt, MIN, t0 } from "../test/support/reaper-plans.js";
import { BloomFilter } from "./bloom.js";
import { ownersNamedOtherwise, planStrays, planUnread } from "./strays.js";

const now = new Date(t0.getTime() + MIN);

/** An instance, active at t0; `podName` when it runs a claimed pool member's Pod. */
const clientPod = (name: string, podName?: string): ClientPod =>
  instanceAt(name, {
    lastActivity: t0,
    annotations: podName ? { "gptme.ai/pool-member": podName } : undefined,
  });

function pod(name: string, owner?: { name: string; uid: string }, phase = "Running"): V1Pod {
  return {
    metadata: {
      name,
      uid: `pod-uid-${name}`,
      ownerReferences: owner && [
        { apiVersion: "gptme.ai/v1", kind: "ClientPod", controller: true, ...owner },
      ],
    },
    status: { phase },
  };
}

const ownedBy = (cp: ClientPod) => ({ name: cp.metadata.name, uid: cp.metadata.uid });
const names = (pods: V1Pod[]) => pods.map((p) => p.metadata?.name);

describe("planStrays", () => {
  const adopter = clientPod("gptme-client-a", "gptme-pool-1");
  const owners = new BloomFilter();
  for (const uid of ownersNamedOtherwise([adopter, clientPod("gptme-client-b")])) owners.add(uid);

  it("remembers only the ClientPods whose Pod is named otherwise", () => {
    expect(ownersNamedOtherwise([adopter, clientPod("gptme-client-b")])).toEqual([
      "uid-gptme-client-a",
    ]);
  });

  it("leaves Pods whose instance is in the batch to the instance's own plan", () => {
    const b = clientPod("gptme-client-b");
    const strays = planStrays([b, adopter], [pod("gptme-client-b", ownedBy(b))], owners);
    expect(strays).toEqual({ orphans: [], unread: [] });
  });

  it("deletes a Pod with no owner at once, by uid", () => {
    const strays = planStrays([], [pod("gptme-client-x")], owners);
    expect(strays.orphans).toEqual([
      expect.objectContaining({
        kind: "pod",
        name: "gptme-client-x",
        uid: "pod-uid-gptme-client-x",
        reason: "orphan",
      }),
    ]);
  });

  it("reads the owner again of a Pod whose namesake is missing or another one", () => {
    const gone = pod("gptme-client-g", { name: "gptme-client-g", uid: "uid-gone" });
    const earlier = pod("gptme-client-b", { name: "gptme-client-b", uid: "uid-earlier" });
    const strays = planStrays([clientPod("gptme-client-b")], [gone, earlier], owners);
    expect(strays.orphans).toEqual([]);
    expect(names(strays.unread)).toEqual(["gptme-client-g", "gptme-client-b"]);
  });

  it("keeps an adopted Pod whose owner was read in an earlier batch, unless it ended", () => {
    const running = pod("gptme-pool-1", ownedBy(adopter));
    const ended = pod("gptme-pool-1", ownedBy(adopter), "Failed");
    expect(planStrays([], [running], owners)).toEqual({ orphans: [], unread: [] });
    expect(names(planStrays([], [ended], owners).unread)).toEqual(["gptme-pool-1"]);
  });

  it("reads the owner again of an adopted Pod whose owner it never read", () => {
    const stranger = pod("gptme-pool-2", { name: "gptme-client-z", uid: "uid-z" });
    expect(names(planStrays([], [stranger], owners).unread)).toEqual(["gptme-pool-2"]);
  });

  it("ignores Pods already going", () => {
    const going = pod("gptme-client-x");
    going.metadata = { ...going.metadata, deletionTimestamp: t0 };
    expect(planStrays([], [going], owners)).toEqual({ orphans: [], unread: [] });
  });
});

describe("planUnread", () => {
  const adopter = clientPod("gptme-client-a", "gptme-pool-1");

  it("an orphan when its owner is gone or is another ClientPod of that name", () => {
    const p = pod("gptme-pool-1", ownedBy(adopter));
    expect(planUnread(p, undefined, now, defaults).map((a) => [a.kind, a.name, a.reason])).toEqual([
      ["pod", "gptme-pool-1", "orphan"],
    ]);
    const other = { ...adopter, metadata: { ...adopter.metadata, uid: "uid-new" } };
    expect(planUnread(p, other, now, defaults).map((a) => a.reason)).toEqual(["orphan"]);
  });

  it("nothing for a running Pod of a live instance (made after the reaper's read)", () => {
    expect(planUnread(pod("gptme-pool-1", ownedBy(adopter)), adopter, now, defaults)).toEqual([]);
  });

  it("the instance, with its read's preconditions, when its Pod ended", () => {
    const ended = pod("gptme-pool-1", ownedBy(adopter), "Succeeded");
    expect(planUnread(ended, adopter, now, defaults)).toEqual([
      expect.objectContaining({
        kind: "clientpod",
        name: "gptme-client-a",
        reason: "pod-ended",
        uid: "uid-gptme-client-a",
        resourceVersion: "rv-gptme-client-a",
        parts: { pod: "gptme-pool-1", workspace: "gptme-pool-1" },
      }),
    ]);
  });

  it("leaves an idle instance to its batch's plan", () => {
    const ended = pod("gptme-pool-1", ownedBy(adopter), "Failed");
    expect(planUnread(ended, adopter, new Date(t0.getTime() + 60 * MIN), defaults)).toEqual([]);
  });
});
