import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { at, clientPod, MIN, t0 } from "../test/support/reaper-plans.js";
import { BloomFilter } from "./bloom.js";
import { claimsInUse, planWorkspaces } from "./plan.js";

describe("planWorkspaces", () => {
  const DAY = 24 * 60 * MIN;
  const retention = 30 * DAY;
  const claim = (name: string, lastUsed: Date | undefined, deleting = false) => ({
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: `rv-${name}`,
      creationTimestamp: t0,
      deletionTimestamp: deleting ? t0 : undefined,
      labels: { "gptme.ai/client": "c".repeat(32) },
      annotations: lastUsed ? { "gptme.ai/last-used": lastUsed.toISOString() } : undefined,
    },
  });
  const now = at(40 * DAY);
  const nothingInUse = { mightHave: () => false };

  it("deletes a workspace unused past the retention, with the read's preconditions", () => {
    const actions = planWorkspaces([claim("old", at(9 * DAY))], nothingInUse, now, retention);
    expect(actions).toEqual([
      {
        kind: "workspace",
        name: "old",
        clientId: "c".repeat(32),
        reason: "workspace-retention",
        idleSeconds: 31 * 24 * 3600,
        uid: "uid-old",
        resourceVersion: "rv-old",
      },
    ]);
  });

  it("keeps a recent one, and one exactly at the retention", () => {
    const claims = [claim("recent", at(20 * DAY)), claim("edge", at(10 * DAY))];
    expect(planWorkspaces(claims, nothingInUse, now, retention)).toEqual([]);
  });

  it("never deletes one a Pod mounts, one an instance uses, or one already going", () => {
    const claims = [
      claim("mounted", at(0)),
      claim("instance", at(0)),
      claim("kept-for-b", at(0)),
      claim("going", at(0), true),
      claim("unused", at(0)),
    ];
    const b = clientPod("b");
    b.metadata.annotations = { "gptme.ai/workspace-claim": "kept-for-b" };
    const mounting: V1Pod = {
      metadata: { name: "p" },
      spec: {
        containers: [],
        volumes: [{ name: "w", persistentVolumeClaim: { claimName: "mounted" } }],
      },
    };
    // What a pass gathers over every batch it read.
    const inUse = new BloomFilter();
    for (const name of claimsInUse([clientPod("instance"), b], [mounting])) inUse.add(name);
    expect(planWorkspaces(claims, inUse, now, retention).map((a) => a.name)).toEqual(["unused"]);
  });

  it("counts from the claim's creation when no use was recorded", () => {
    const actions = planWorkspaces([claim("unrecorded", undefined)], nothingInUse, now, retention);
    expect(actions.map((a) => a.name)).toEqual(["unrecorded"]);
  });
});
