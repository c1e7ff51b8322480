import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { mirrorAnnotations } from "../../shared/instance/record.js";
import { isRepairTouchDue, podStepOf, warmStepOf, withKnownActivity } from "./next-step.js";

const MIN = 60_000;
const created = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(created.getTime() + ms);
const nothingKnown = () => undefined;

function clientPod(overrides: Partial<ClientPod["status"]> = {}): ClientPod {
  return {
    apiVersion: "gptme.ai/v1",
    kind: "ClientPod",
    metadata: {
      name: "gptme-client-0123456789abcdef",
      namespace: "fleet",
      uid: "uid-1",
      resourceVersion: "7",
      creationTimestamp: created,
    },
    spec: { clientId: "c".repeat(32), instanceId: "default", podTemplate: "gptme-client" },
    status: { phase: "Running", ...overrides },
  } as ClientPod;
}

/** The instance's Pod as the warm read finds it: owned, mirrored, running. */
function pod(
  owner = clientPod(),
  changes: { phase?: string; deleting?: boolean; ownerUid?: string; mirror?: boolean } = {},
): V1Pod {
  return {
    metadata: {
      name: owner.metadata.name,
      uid: "pod-uid",
      labels: { "gptme.ai/client": owner.spec.clientId, "gptme.ai/instance": "default" },
      annotations: changes.mirror === false ? {} : mirrorAnnotations(owner),
      ownerReferences: [
        {
          apiVersion: "gptme.ai/v1",
          kind: "ClientPod",
          name: owner.metadata.name,
          uid: changes.ownerUid ?? owner.metadata.uid,
          controller: true,
        },
      ],
      ...(changes.deleting ? { deletionTimestamp: at(1) } : {}),
    },
    status: { phase: changes.phase ?? "Running", podIP: "127.42.0.9" },
  };
}

describe("warmStepOf: the warm path's step from the Pod alone", () => {
  it("answers from the mirror within the activity interval", () => {
    const step = warmStepOf(pod(), at(30_000), MIN, nothingKnown);
    expect(step.kind).toBe("answer");
  });

  it("records activity once the interval has passed since the last known activity", () => {
    expect(warmStepOf(pod(), at(MIN), MIN, nothingKnown).kind).toBe("record-activity");
  });

  it("counts activity this replica knows of beyond the mirror (not rewritten for activity)", () => {
    const known = () => at(50_000);
    const step = warmStepOf(pod(), at(MIN + 10_000), MIN, known);
    expect(step).toMatchObject({ kind: "answer", record: { lastActivity: at(50_000) } });
  });

  it("records a phase the ClientPod has not recorded yet", () => {
    const step = warmStepOf(pod(clientPod({ phase: "Pending" })), at(1_000), MIN, nothingKnown);
    expect(step.kind).toBe("record-activity");
  });

  it.each<[string, V1Pod | undefined]>([
    ["no Pod", undefined],
    ["an ended Pod", pod(clientPod(), { phase: "Failed" })],
    ["a terminating Pod", pod(clientPod(), { deleting: true })],
    ["a Pod without its mirror", pod(clientPod(), { mirror: false })],
  ])("repairs on %s", (_, found) => {
    expect(warmStepOf(found, at(1_000), MIN, nothingKnown).kind).toBe("repair");
  });
});

describe("withKnownActivity", () => {
  const record = { name: "n", createdAt: created, lastActivity: at(10_000) };
  it("keeps the later of the mirror's activity and the known one", () => {
    expect(withKnownActivity(record as never, at(20_000)).lastActivity).toEqual(at(20_000));
    expect(withKnownActivity(record as never, at(5_000)).lastActivity).toEqual(at(10_000));
    expect(withKnownActivity(record as never, undefined).lastActivity).toEqual(at(10_000));
  });
});

describe("podStepOf: what to do with a ClientPod's Pod", () => {
  const owner = clientPod();
  it.each<[string, V1Pod | undefined, string]>([
    ["none", undefined, "start"],
    ["its own, running", pod(owner), "keep"],
    ["its own, still pending", pod(owner, { phase: "Pending" }), "keep"],
    ["its own, ended", pod(owner, { phase: "Succeeded" }), "replace"],
    ["an earlier ClientPod's", pod(owner, { ownerUid: "uid-0" }), "replace"],
    ["terminating", pod(owner, { deleting: true }), "wait-out"],
    ["terminating and ended", pod(owner, { deleting: true, phase: "Failed" }), "wait-out"],
  ])("%s: %s", (_, found, step) => {
    expect(podStepOf(owner, found)).toBe(step);
  });
});

describe("isRepairTouchDue", () => {
  it("never for an instance this request created (creation is its first activity)", () => {
    expect(isRepairTouchDue(clientPod(), true, at(10 * MIN), MIN, nothingKnown)).toBe(false);
  });

  it("for a found instance once the interval has passed, counting known activity", () => {
    expect(isRepairTouchDue(clientPod(), false, at(MIN), MIN, nothingKnown)).toBe(true);
    expect(isRepairTouchDue(clientPod(), false, at(MIN), MIN, () => at(30_000))).toBe(false);
  });
});
