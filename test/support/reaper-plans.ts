import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../../shared/instance/clientpod.js";

// The instances and Pods the reaper's plans are tested on (reaper/*plan*.test.ts, strays.test.ts).

export const MIN = 60_000;
export const defaults = { idleTimeoutMs: 30 * MIN, maxLifetimeMs: 24 * 60 * MIN };
export const t0 = new Date("2026-06-01T00:00:00Z");
export const at = (ms: number) => new Date(t0.getTime() + ms);

export function clientPod(
  name: string,
  opts: {
    created?: Date;
    lastActivity?: Date;
    idleTimeoutSeconds?: number;
    maxLifetimeSeconds?: number;
    deleting?: boolean;
    annotations?: Record<string, string>;
  } = {},
): ClientPod {
  return {
    apiVersion: "gptme.ai/v1",
    kind: "ClientPod",
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      resourceVersion: `rv-${name}`,
      creationTimestamp: opts.created ?? t0,
      deletionTimestamp: opts.deleting ? t0 : undefined,
      annotations: opts.annotations,
    },
    spec: {
      clientId: "c".repeat(32),
      instanceId: name,
      podTemplate: "gptme-client",
      idleTimeoutSeconds: opts.idleTimeoutSeconds,
      maxLifetimeSeconds: opts.maxLifetimeSeconds,
    },
    status: opts.lastActivity ? { lastActivity: opts.lastActivity } : undefined,
  };
}

export function pod(name: string, ownerUid: string | undefined, phase = "Running"): V1Pod {
  return {
    metadata: {
      name,
      uid: `pod-uid-${name}`,
      labels: { "app.kubernetes.io/managed-by": "gptme-fleet", "gptme.ai/client": "c".repeat(32) },
      ownerReferences: ownerUid
        ? [{ apiVersion: "gptme.ai/v1", kind: "ClientPod", name, uid: ownerUid, controller: true }]
        : undefined,
    },
    status: { phase },
  };
}
