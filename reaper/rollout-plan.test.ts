import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../shared/instance/clientpod.js";
import { clientPod as instanceAt, MIN, t0 } from "../test/support/reaper-plans.js";
import { podsByName } from "./plan.js";
import { LongestIdle, planRollout, rolloutOfUnread } from "./rollout-plan.js";

const now = new Date(t0.getTime() + 60 * MIN);
const current = new Map([["gptme-client", "new0000000"]]);

/** An instance idle for `idleMin` minutes at `now`. */
const clientPod = (name: string, idleMin: number, deleting = false): ClientPod =>
  instanceAt(name, { lastActivity: new Date(now.getTime() - idleMin * MIN), deleting });

function pod(
  name: string,
  revision: string | undefined,
  opts: { phase?: string; owner?: string } = {},
): V1Pod {
  return {
    metadata: {
      name,
      uid: `pod-${name}`,
      resourceVersion: `rv-${name}`,
      annotations: revision ? { "gptme.ai/revision": revision } : undefined,
      ownerReferences: [
        {
          apiVersion: "gptme.ai/v1",
          kind: "ClientPod",
          name,
          uid: opts.owner ?? `uid-${name}`,
          controller: true,
        },
      ],
    },
    status: { phase: opts.phase ?? "Running", podIP: "127.0.0.9" },
    spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: 5700 }] }] },
  };
}

const plan = (cps: ClientPod[], pods: V1Pod[], leaving = new Set<string>()) =>
  planRollout(cps, podsByName(pods), now, current, 10 * MIN, leaving);

describe("planRollout", () => {
  it("replaces the Pods of outdated instances idle for the rollout's idle time", () => {
    const actions = plan(
      [
        clientPod("old-idle", 15),
        clientPod("old-active", 5),
        clientPod("fresh", 30),
        clientPod("unknown", 20),
      ],
      [
        pod("old-idle", "old0000000"),
        pod("old-active", "old0000000"),
        pod("fresh", "new0000000"),
        pod("unknown", undefined),
      ],
    );
    expect(actions.map((a) => a.name).sort()).toEqual(["old-idle", "unknown"]);
    expect(actions[0]).toMatchObject({
      kind: "pod",
      reason: "outdated",
      uid: "pod-old-idle",
      resourceVersion: "rv-old-idle",
      idleSeconds: 15 * 60,
      target: { host: "127.0.0.9", port: 5700 },
    });
  });

  it("leaves alone what has no running Pod of its own, is leaving anyway, or has no template", () => {
    const actions = planRollout(
      [
        clientPod("no-pod", 60),
        clientPod("ended", 60),
        clientPod("stale", 60),
        clientPod("deleting", 60, true),
        clientPod("reaped", 60),
        {
          ...clientPod("other-template", 60),
          spec: { ...clientPod("x", 0).spec, podTemplate: "gone" },
        },
      ],
      podsByName([
        pod("ended", "old", { phase: "Failed" }),
        pod("stale", "old", { owner: "uid-earlier" }),
        pod("deleting", "old"),
        pod("reaped", "old"),
        pod("other-template", "old"),
      ]),
      now,
      new Map([...current, ["gone", undefined]]),
      10 * MIN,
      new Set(["reaped"]),
    );
    expect(actions).toEqual([]);
  });

  it("compares with the template an instance's plan gives now, when told", () => {
    const moved = {
      ...clientPod("moved", 30),
      spec: { ...clientPod("moved", 30).spec, plan: "pro" },
    };
    const revisions = new Map([
      ["gptme-client", "old0000000"],
      ["gptme-client-pro", "pro0000000"],
    ]);
    const templateOf = (cp: ClientPod) =>
      cp.spec.plan === "pro" ? "gptme-client-pro" : cp.spec.podTemplate;
    const actions = planRollout(
      [moved, clientPod("stays", 30)],
      podsByName([pod("moved", "old0000000"), pod("stays", "old0000000")]),
      now,
      revisions,
      10 * MIN,
      new Set(),
      templateOf,
    );
    expect(actions.map((a) => a.name)).toEqual(["moved"]);
  });

  it("counts exactly the rollout's idle time as enough", () => {
    expect(plan([clientPod("a", 10)], [pod("a", "old")]).map((a) => a.name)).toEqual(["a"]);
  });

  it("takes an instance whose Pod was not read with it by its recorded revision, and reads the Pod before it goes", () => {
    const adopter = (name: string, revision: string) => {
      const cp = clientPod(name, 60);
      cp.metadata.annotations = { "gptme.ai/pool-member": `pool-${name}` };
      cp.status = { ...cp.status, revision };
      return cp;
    };
    const [candidate, ...rest] = plan(
      [adopter("old", "old0000000"), adopter("new", "new0000000")],
      [],
    );
    expect(rest).toEqual([]);
    expect(candidate).toMatchObject({
      name: "pool-old",
      reason: "outdated",
      unread: { pod: "pool-old", ownerUid: "uid-old", revision: "new0000000" },
    });
    if (!candidate) return;
    const member = (revision: string, owner = "uid-old") => pod("pool-old", revision, { owner });
    expect(rolloutOfUnread(candidate, member("old0000000"))).toMatchObject({
      uid: "pod-pool-old",
      resourceVersion: "rv-pool-old",
      target: { host: "127.0.0.9", port: 5700 },
      unread: undefined,
    });
    // Already current, another instance's, or gone: nothing to replace.
    expect(rolloutOfUnread(candidate, member("new0000000"))).toBeUndefined();
    expect(rolloutOfUnread(candidate, member("old0000000", "uid-other"))).toBeUndefined();
    expect(rolloutOfUnread(candidate, undefined)).toBeUndefined();
  });
});

describe("LongestIdle", () => {
  it("keeps the candidates idle longest, however many are offered", () => {
    const keep = new LongestIdle(3);
    for (let page = 0; page < 100; page++) {
      keep.offer(
        Array.from({ length: 10 }, (_, i) => ({
          kind: "pod" as const,
          name: `p${page}-${i}`,
          clientId: undefined,
          reason: "outdated" as const,
          idleSeconds: (page * 37 + i * 101) % 1000,
          uid: "u",
          resourceVersion: undefined,
        })),
      );
    }
    expect(keep.take().map((a) => a.idleSeconds)).toEqual([999, 998, 997]);
  });
});
