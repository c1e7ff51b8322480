import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../shared/instance/clientpod.js";
import type { ExpiryDefaults } from "../shared/instance/expiry.js";
import { at, clientPod, defaults, MIN, pod } from "../test/support/reaper-plans.js";
import { BloomFilter } from "./bloom.js";
import { planClientPods, podsByName, type ReapAction } from "./plan.js";
import { planStrays, planUnread } from "./strays.js";

/**
 * The plan of one batch read whole, as a pass makes it: the ClientPods' own actions, then the
 * strays', each stray's owner "read again" from the same ClientPods by name.
 */
function planReap(
  clientPods: ClientPod[],
  pods: V1Pod[],
  now: Date,
  defaults: ExpiryDefaults,
): ReapAction[] {
  const strays = planStrays(clientPods, pods, new BloomFilter(10));
  const ownerOf = (p: V1Pod) =>
    clientPods.find((cp) => cp.metadata.name === p.metadata?.ownerReferences?.[0]?.name);
  return [
    ...planClientPods(clientPods, podsByName(pods), now, defaults),
    ...strays.orphans,
    ...strays.unread.flatMap((p) => planUnread(p, ownerOf(p), now, defaults)),
  ];
}

const reasons = (clientPods: ClientPod[], pods: V1Pod[], now: Date) =>
  Object.fromEntries(planReap(clientPods, pods, now, defaults).map((a) => [a.name, a.reason]));

describe("planReap", () => {
  it.each<[string, ClientPod, Date, string | undefined]>([
    ["fresh, never touched", clientPod("a"), at(29 * MIN), undefined],
    ["never touched, exactly at the idle timeout", clientPod("a"), at(30 * MIN), undefined],
    [
      "never touched, idle past the timeout (measured from creation)",
      clientPod("a"),
      at(30 * MIN + 1),
      "idle",
    ],
    ["recently active", clientPod("a", { lastActivity: at(60 * MIN) }), at(89 * MIN), undefined],
    [
      "active exactly one timeout ago",
      clientPod("a", { lastActivity: at(60 * MIN) }),
      at(90 * MIN),
      undefined,
    ],
    [
      "idle past the timeout since its activity",
      clientPod("a", { lastActivity: at(60 * MIN) }),
      at(90 * MIN + 1),
      "idle",
    ],
    [
      "active but exactly at max lifetime",
      clientPod("a", { lastActivity: at(24 * 60 * MIN - 1) }),
      at(24 * 60 * MIN),
      undefined,
    ],
    [
      "active but past max lifetime",
      clientPod("a", { lastActivity: at(24 * 60 * MIN) }),
      at(24 * 60 * MIN + 1),
      "max-lifetime",
    ],
    [
      "idle override keeps it",
      clientPod("a", { idleTimeoutSeconds: 3600 }),
      at(59 * MIN),
      undefined,
    ],
    ["idle override expires it", clientPod("a", { idleTimeoutSeconds: 60 }), at(MIN + 1), "idle"],
    [
      "lifetime override expires it",
      clientPod("a", { lastActivity: at(9 * MIN), maxLifetimeSeconds: 600 }),
      at(10 * MIN + 1),
      "max-lifetime",
    ],
    ["already being deleted", clientPod("a", { deleting: true }), at(48 * 60 * MIN), undefined],
  ])("%s", (_what, cp, now, reason) => {
    expect(reasons([cp], [pod("a", cp.metadata.uid)], now).a).toBe(reason);
  });

  it("deletes a ClientPod whose Pod ended", () => {
    const cp = clientPod("a");
    expect(reasons([cp], [pod("a", cp.metadata.uid, "Failed")], at(MIN))).toEqual({
      a: "pod-ended",
    });
    expect(reasons([cp], [pod("a", cp.metadata.uid, "Succeeded")], at(MIN))).toEqual({
      a: "pod-ended",
    });
  });

  it("ignores an ended Pod that belongs to an earlier ClientPod of the same name", () => {
    const cp = clientPod("a");
    const stale = pod("a", "uid-of-an-earlier-one", "Failed");
    // The stale pod is an orphan; the current ClientPod is fine.
    expect(planReap([cp], [stale], at(MIN), defaults).map((a) => [a.kind, a.reason])).toEqual([
      ["pod", "orphan"],
    ]);
  });

  it("deletes Pods whose ClientPod is gone, and only those", () => {
    const cp = clientPod("a");
    const plan = planReap(
      [cp],
      [pod("a", cp.metadata.uid), pod("b", "uid-b"), pod("c", undefined)],
      at(MIN),
      defaults,
    );
    expect(plan.map((a) => [a.kind, a.name, a.reason]).sort()).toEqual([
      ["pod", "b", "orphan"],
      ["pod", "c", "orphan"],
    ]);
  });

  it("carries the preconditions and the idle seconds", () => {
    const [action] = planReap(
      [clientPod("a", { lastActivity: at(MIN) })],
      [],
      at(45 * MIN),
      defaults,
    );
    expect(action).toEqual({
      kind: "clientpod",
      name: "a",
      clientId: "c".repeat(32),
      reason: "idle",
      idleSeconds: 44 * 60,
      uid: "uid-a",
      resourceVersion: "rv-a",
      // No Pod to probe; what the expiry becomes if the reaper finds it busy after all.
      target: undefined,
      timeouts: { idleTimeoutMs: 30 * MIN, lifetimeEndsAt: at(24 * 60 * MIN) },
    });
  });

  it("names the Pod and workspace claim an instance made from a pool member keeps", () => {
    const claimed = clientPod("a");
    claimed.metadata.annotations = { "gptme.ai/pool-member": "gptme-pool-0123456789abcdef" };
    const overKept = clientPod("b");
    overKept.metadata.annotations = { "gptme.ai/workspace-claim": "gptme-pool-fedcba9876543210" };
    const plan = planReap([claimed, overKept, clientPod("c")], [], at(45 * MIN), defaults);
    expect(plan.map((a) => [a.name, a.parts])).toEqual([
      ["a", { pod: "gptme-pool-0123456789abcdef", workspace: "gptme-pool-0123456789abcdef" }],
      ["b", { pod: "b", workspace: "gptme-pool-fedcba9876543210" }],
      ["c", undefined],
    ]);
  });

  it("gives an idle instance's probe its own running Pod's IP and http port, and nothing else", () => {
    const cp = clientPod("a");
    const running = (ip: string | undefined, owner = cp.metadata.uid, phase = "Running") => {
      const p = pod("a", owner, phase);
      p.spec = {
        containers: [
          { name: "sidecar", ports: [{ name: "metrics", containerPort: 9090 }] },
          { name: "gptme-server", ports: [{ name: "http", containerPort: 5700 }] },
        ],
      };
      p.status = { ...p.status, podIP: ip };
      return p;
    };
    const targetAt = (pods: V1Pod[], now = at(31 * MIN)) =>
      planReap([cp], pods, now, defaults).find((a) => a.kind === "clientpod")?.target;
    expect(targetAt([running("127.42.0.7")])).toEqual({ host: "127.42.0.7", port: 5700 });
    // No IP yet, no Pod, or a Pod of an earlier ClientPod: nothing to ask.
    expect(targetAt([running(undefined)])).toBeUndefined();
    expect(targetAt([])).toBeUndefined();
    expect(targetAt([running("127.42.0.7", "uid-of-an-earlier-one")])).toBeUndefined();
    // Past its lifetime, an instance goes whatever it is doing: no probe.
    expect(targetAt([running("127.42.0.7")], at(25 * 60 * MIN))).toBeUndefined();
  });

  it("marks an idle instance whose Pod is named otherwise and not in its batch for a read before its probe", () => {
    const adopter = clientPod("a");
    adopter.metadata.annotations = { "gptme.ai/pool-member": "gptme-pool-0123456789abcdef" };
    const [action] = planClientPods([adopter], new Map(), at(31 * MIN), defaults);
    expect(action).toMatchObject({
      reason: "idle",
      target: undefined,
      unread: { pod: "gptme-pool-0123456789abcdef", ownerUid: "uid-a" },
    });
    // Its own Pod, read in the same batch: probed where it runs, nothing to read.
    const own: V1Pod = {
      metadata: {
        name: "gptme-pool-0123456789abcdef",
        uid: "pod-uid",
        ownerReferences: [
          {
            apiVersion: "gptme.ai/v1",
            kind: "ClientPod",
            name: "a",
            uid: "uid-a",
            controller: true,
          },
        ],
      },
      status: { phase: "Running", podIP: "127.42.0.9" },
    };
    const [probed] = planClientPods([adopter], podsByName([own]), at(31 * MIN), defaults);
    expect(probed).toMatchObject({ target: { host: "127.42.0.9", port: 5700 }, unread: undefined });
  });

  it("reports max-lifetime before idle when both have passed", () => {
    expect(reasons([clientPod("a")], [], at(25 * 60 * MIN)).a).toBe("max-lifetime");
  });
});
