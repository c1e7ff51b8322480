import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { ANNOTATION_SERVING_SINCE } from "../shared/instance/serving.js";
import { ANNOTATION_POOL_TEMPLATE, LABEL_POOL, POOL_MEMBER } from "../shared/pool/member.js";
import { unlistedEntries } from "../shared/pool/member-index.js";
import { MEMBER_START_GRACE_MS, planPool } from "./pool-plan.js";

const now = new Date("2026-01-01T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms);

function member(name: string, createdAgoMs = 600_000): ClientPod {
  return {
    apiVersion: "gptme.ai/v1",
    kind: "ClientPod",
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      resourceVersion: "1",
      creationTimestamp: ago(createdAgoMs),
      labels: { [LABEL_POOL]: POOL_MEMBER },
    },
    spec: { clientId: "0".repeat(32), instanceId: "pool", podTemplate: "gptme-client" },
  };
}

function pod(
  name: string,
  { owner = `uid-${name}`, pool = true, template = "7", phase = "Running", serving = false } = {},
): V1Pod {
  return {
    metadata: {
      name,
      labels: pool ? { [LABEL_POOL]: POOL_MEMBER } : { "gptme.ai/client": "c".repeat(32) },
      annotations: {
        [ANNOTATION_POOL_TEMPLATE]: template,
        ...(serving ? { [ANNOTATION_SERVING_SINCE]: ago(1_000).toISOString() } : {}),
      },
      ownerReferences: [
        { apiVersion: "gptme.ai/v1", kind: "ClientPod", name, uid: owner, controller: true },
      ],
    },
    status: { phase, podIP: "127.42.0.9" },
  };
}

describe("planPool", () => {
  it("starts what is missing to reach POOL_SIZE", () => {
    const plan = planPool([member("a")], [pod("a")], now, 5, "7");
    expect(plan).toMatchObject({ remove: [], start: 4, members: 1 });
    expect(plan.unseen.map((p) => p.metadata?.name)).toEqual(["a"]);
  });

  it("counts members still starting (no Pod yet, within the grace) and starts no more for them", () => {
    const plan = planPool([member("a"), member("b", 5_000)], [pod("a")], now, 2, "7");
    expect(plan).toMatchObject({ remove: [], start: 0, members: 1 });
  });

  it("removes what a claim left, broken, outdated and surplus members", () => {
    const members = ["claimed", "ended", "podless", "old", "s1", "s2", "s3"].map((n) => member(n));
    const pods = [
      pod("claimed", { owner: "uid-instance", pool: false }),
      pod("ended", { phase: "Failed" }),
      pod("old", { template: "6" }),
      pod("s1", { serving: true }),
      pod("s2"),
      pod("s3", { serving: true }),
    ];
    const plan = planPool(members, pods, now, 2, "7");
    const reasons = Object.fromEntries(plan.remove.map((r) => [r.name, r.reason]));
    expect(reasons).toEqual({
      claimed: "claimed",
      ended: "broken",
      podless: "broken",
      old: "outdated",
      // Serving members are kept first.
      s2: "surplus",
    });
    expect(plan.remove.find((r) => r.name === "claimed")?.adoptedBy?.metadata?.name).toBe(
      "claimed",
    );
    expect(plan).toMatchObject({ start: 0, members: 2 });
  });

  it("gives a member without a Pod the grace to start", () => {
    const young = planPool([member("a", MEMBER_START_GRACE_MS - 1)], [], now, 1, "7");
    expect(young.remove).toEqual([]);
    const old = planPool([member("a", MEMBER_START_GRACE_MS + 1)], [], now, 1, "7");
    expect(old.remove.map((r) => r.reason)).toEqual(["broken"]);
    expect(old.start).toBe(1);
  });

  it("removes every member when the pool is turned off", () => {
    const plan = planPool([member("a"), member("b")], [pod("a"), pod("b")], now, 0, "7");
    expect(plan.remove.map((r) => r.reason)).toEqual(["surplus", "surplus"]);
    expect(plan.start).toBe(0);
  });
});

describe("unlistedEntries", () => {
  it("names the index entries whose member the pass did not list, by name and uid", () => {
    const listed = member("gptme-pool-a");
    const entries = new Map([
      ["gptme-pool-a", { uid: listed.metadata.uid }],
      ["gptme-pool-b", { uid: "gone" }],
      // Another name under a listed member's uid: not that member.
      ["gptme-pool-a2", { uid: listed.metadata.uid }],
    ]);
    expect(unlistedEntries(entries, [listed])).toEqual(["gptme-pool-b", "gptme-pool-a2"]);
    expect(unlistedEntries(new Map(), [listed])).toEqual([]);
  });
});
