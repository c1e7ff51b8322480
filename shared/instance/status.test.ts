import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { isMirrorCurrent, mirrorAnnotations, mirrorLabels, recordFromPod } from "./record.js";
import {
  activityStatus,
  connectionOf,
  isActivityDue,
  isAnswerableAlone,
  statusOf,
} from "./status.js";

const created = new Date("2026-01-01T00:00:00Z");
const record = {
  name: "gptme-client-0123456789abcdef",
  podName: "gptme-client-0123456789abcdef",
  uid: "3f2a9c1e-0000-4000-8000-000000000001",
  tokenSubject: "3f2a9c1e-0000-4000-8000-000000000001",
  tokenKeyId: "0123456789ab" as string | undefined,
  instanceId: "default",
  clientId: "c".repeat(32),
  createdAt: created,
  lastActivity: undefined,
  idleTimeoutSeconds: undefined,
  maxLifetimeSeconds: undefined,
  workspace: undefined,
};
const readyPod: V1Pod = {
  metadata: { name: record.name, annotations: { "gptme.ai/serving-since": created.toISOString() } },
  spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: 5700 }] }] },
  status: { phase: "Running", podIP: "10.0.0.12", conditions: [{ type: "Ready", status: "True" }] },
};

describe("statusOf", () => {
  it.each<[string, V1Pod | undefined, string]>([
    ["no pod yet", undefined, "starting"],
    ["pending", { status: { phase: "Pending" } }, "starting"],
    [
      "running, not ready",
      { status: { phase: "Running", conditions: [{ type: "Ready", status: "False" }] } },
      "starting",
    ],
    ["ready", readyPod, "ready"],
    [
      "kubelet ready, gptme-server never seen answering",
      { ...readyPod, metadata: { name: record.name } },
      "starting",
    ],
    ["failed", { status: { phase: "Failed" } }, "failed"],
    ["succeeded", { status: { phase: "Succeeded" } }, "failed"],
    ["deleting", { ...readyPod, metadata: { deletionTimestamp: new Date() } }, "terminating"],
  ])("%s -> %s", (_what, pod, status) => {
    expect(statusOf(pod)).toBe(status);
  });
});

describe("isAnswerableAlone", () => {
  const owned: V1Pod = {
    ...readyPod,
    metadata: {
      name: record.name,
      ownerReferences: [
        {
          apiVersion: "gptme.ai/v1",
          kind: "ClientPod",
          name: record.name,
          uid: "u1",
          controller: true,
        },
      ],
    },
  };
  it.each<[string, V1Pod, boolean]>([
    ["ready, owned by its ClientPod", owned, true],
    ["starting, owned", { ...owned, status: { phase: "Pending" } }, true],
    ["ended", { ...owned, status: { phase: "Failed" } }, false],
    [
      "being deleted (its ClientPod's deletion reached it)",
      { ...owned, metadata: { ...owned.metadata, deletionTimestamp: new Date() } },
      false,
    ],
    [
      "orphaned (its ClientPod deleted with --cascade=orphan)",
      { ...owned, metadata: { ...owned.metadata, ownerReferences: [] } },
      false,
    ],
  ])("%s", (_what, pod, expected) => {
    expect(isAnswerableAlone(pod)).toBe(expected);
  });
});

describe("connectionOf", () => {
  it("is null until the pod has an IP", () => {
    expect(connectionOf(undefined)).toBeNull();
    expect(connectionOf({ status: { phase: "Pending" } })).toBeNull();
  });
  it("uses the pod IP and the http port", () => {
    expect(connectionOf(readyPod)).toEqual({
      host: "10.0.0.12",
      port: 5700,
      url: "http://10.0.0.12:5700",
    });
  });
  it("brackets IPv6 hosts in the URL", () => {
    const pod = { ...readyPod, status: { ...readyPod.status, podIP: "fd00::1" } };
    expect(connectionOf(pod)?.url).toBe("http://[fd00::1]:5700");
  });
});

describe("isActivityDue", () => {
  it("is due once the interval has passed since the last activity (or creation)", () => {
    expect(isActivityDue(record, new Date(created.getTime() + 59_999), 60_000)).toBe(false);
    expect(isActivityDue(record, new Date(created.getTime() + 60_000), 60_000)).toBe(true);
    const touched = { ...record, lastActivity: new Date(created.getTime() + 60_000) };
    expect(isActivityDue(touched, new Date(created.getTime() + 90_000), 60_000)).toBe(false);
  });
});

describe("the pod mirror", () => {
  it("round-trips a ClientPod's record through the pod's annotations", () => {
    const annotations = mirrorAnnotations({
      apiVersion: "gptme.ai/v1",
      kind: "ClientPod",
      metadata: {
        name: record.name,
        namespace: "ns",
        uid: record.uid,
        resourceVersion: "1",
        creationTimestamp: created,
        annotations: { "gptme.ai/token-key": "0123456789ab" },
      },
      spec: {
        clientId: record.clientId,
        instanceId: "default",
        podTemplate: "t",
        idleTimeoutSeconds: 60,
      },
      status: {
        lastActivity: new Date(created.getTime() + 5_000),
        workspace: { name: record.name, state: "kept" },
      },
    });
    const pod: V1Pod = {
      metadata: {
        name: record.name,
        annotations,
        labels: { "gptme.ai/instance": "default", "gptme.ai/client": record.clientId },
        ownerReferences: [
          {
            apiVersion: "gptme.ai/v1",
            kind: "ClientPod",
            name: record.name,
            uid: record.uid,
            controller: true,
          },
        ],
      },
    };
    expect(recordFromPod(pod)).toEqual({
      ...record,
      lastActivity: new Date(created.getTime() + 5_000),
      idleTimeoutSeconds: 60,
      workspace: { name: record.name, state: "kept" },
    });
  });

  it("is missing when the annotations are", () => {
    expect(recordFromPod({ metadata: { name: "x" } })).toBeUndefined();
  });

  it("carries the plan as the Pod's label, and is not current while the label lags", () => {
    const cp = {
      apiVersion: "gptme.ai/v1" as const,
      kind: "ClientPod" as const,
      metadata: {
        name: record.name,
        namespace: "ns",
        uid: record.uid,
        resourceVersion: "1",
        creationTimestamp: created,
      },
      spec: { clientId: record.clientId, instanceId: "default", podTemplate: "t", plan: "pro" },
    };
    const pod = (plan?: string): V1Pod => ({
      metadata: {
        name: record.name,
        annotations: mirrorAnnotations(cp),
        labels: {
          "gptme.ai/instance": "default",
          "gptme.ai/client": record.clientId,
          ...(plan ? { "gptme.ai/plan": plan } : {}),
        },
        ownerReferences: [
          {
            apiVersion: "gptme.ai/v1",
            kind: "ClientPod",
            name: cp.metadata.name,
            uid: record.uid,
            controller: true,
          },
        ],
      },
    });
    expect(mirrorLabels(cp)).toEqual({ "gptme.ai/plan": "pro" });
    expect(recordFromPod(pod("pro"))?.plan).toBe("pro");
    expect(isMirrorCurrent(pod("pro"), cp)).toBe(true);
    expect(isMirrorCurrent(pod("free"), cp)).toBe(false);
    expect(isMirrorCurrent(pod(), cp)).toBe(false);
    // An instance from before plans: no label to mirror, and none removed.
    const old = { ...cp, spec: { ...cp.spec, plan: undefined } };
    expect(mirrorLabels(old)).toEqual({ "gptme.ai/plan": null });
    expect(isMirrorCurrent(pod(), old)).toBe(true);
  });
});

describe("activityStatus", () => {
  const defaults = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 };

  it("writes the activity, the Pod's phase and IP, and the expiry that follows", () => {
    const now = new Date("2026-01-01T01:00:00Z");
    expect(activityStatus(record, now, readyPod, defaults)).toEqual({
      lastActivity: "2026-01-01T01:00:00.000Z",
      phase: "Running",
      podIP: "10.0.0.12",
      expiresAt: "2026-01-01T01:30:00.000Z",
    });
  });

  it("caps the expiry at the lifetime, and leaves out what it does not know", () => {
    const late = new Date("2026-01-01T23:50:00Z");
    expect(activityStatus(record, late, undefined, defaults)).toEqual({
      lastActivity: "2026-01-01T23:50:00.000Z",
      phase: undefined,
      podIP: undefined,
      expiresAt: "2026-01-02T00:00:00.000Z",
    });
    expect(activityStatus(undefined, late, undefined, defaults).expiresAt).toBeUndefined();
  });
});
