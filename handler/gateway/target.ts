import type { V1Pod } from "@kubernetes/client-node";
import { ownerUidOf } from "../../shared/instance/pod-status.js";
import type { InstanceRecord } from "../../shared/instance/record.js";
import { connectionOf, type InstanceStatus, statusOf } from "../../shared/instance/status.js";
import { type TokenKeys, tokenOf } from "../../shared/tokens/instance-token.js";

/**
 * What a gateway or preview request needs of an instance's Pod, worked out once per read of
 * the Pod (not per request): whether it serves, where, and whose it is. The Pod itself is
 * kept slimmed to the fields that activity writes and holds read (about a tenth of what the
 * API server sends), so a replica's memory does not grow with whole Pods.
 */
export interface PodView {
  name: string;
  /** The ClientPod that owns it (its controller); undefined for an orphan. */
  ownerUid: string | undefined;
  status: InstanceStatus;
  /** Where its gptme-server listens; undefined before it has an IP. */
  host: string | undefined;
  port: number;
  /** The slimmed Pod, for the activity write and the hold (which take a Pod). */
  pod: V1Pod;
}

/** An instance as the gateway finds it by the name a request gives (a Pod's or an instance's). */
export interface Target {
  /** The name of the instance's Pod (a claimed pool member's keeps the member's). */
  podName: string;
  /** The instance: from its Pod's mirror, or its ClientPod when the Pod lacks one or is gone. */
  record: InstanceRecord;
  /** Its Pod; undefined when there is none. */
  pod: PodView | undefined;
  /** The instance's token under a set of keys, worked out once per key set. */
  token?: { keys: TokenKeys } & InstanceToken;
}

/** An instance's token, as a request checks it and as its pod receives it. */
export interface InstanceToken {
  /** Undefined when its key is not among the keys (an instance older than key ids). */
  token: string | undefined;
  /** The token's bytes, for a constant-time compare. */
  expected: Buffer | undefined;
  /** `Bearer <token>`, the Authorization the pod receives. */
  authorization: string;
}

/** A Pod as a request sees it; the Pod is kept slimmed. */
export function podViewOf(pod: V1Pod): PodView {
  const connection = connectionOf(pod);
  return {
    name: pod.metadata?.name ?? "",
    ownerUid: ownerUidOf(pod),
    status: statusOf(pod),
    host: connection?.host,
    port: connection?.port ?? 0,
    pod: slimPod(pod),
  };
}

/** Whether the Pod is the instance's own and serves: a request may go through. */
export const isServingTarget = (
  target: Target,
): target is Target & { pod: PodView & { host: string } } =>
  target.pod !== undefined &&
  target.pod.ownerUid === target.record.uid &&
  target.pod.status === "ready" &&
  target.pod.host !== undefined;

/** The instance's token, worked out once per key set (not per request). */
export function tokenFor(target: Target, keys: TokenKeys): InstanceToken {
  if (target.token?.keys !== keys) {
    const token = tokenOf(target.record, keys);
    target.token = {
      keys,
      token,
      expected: token === undefined ? undefined : ownBytes(token),
      authorization: `Bearer ${token ?? ""}`,
    };
  }
  return target.token;
}

/**
 * A string's bytes in a buffer of their own. `Buffer.from` cuts small buffers out of a shared
 * 8 KiB pool, and one kept in a cache keeps its whole pool chunk alive (the rest of it request
 * data long freed): 10,000 cached tokens held 26 MB that way.
 */
export function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

const FLEET_ANNOTATION = /^gptme\.ai\//;

/**
 * The fields of a Pod the fleet reads once it has decided to use it: its identity and version
 * (a watch starts from it), the fleet's labels, annotations and owner, its containers' ports,
 * and its phase, IP and Ready condition.
 */
export function slimPod(pod: V1Pod): V1Pod {
  const metadata = pod.metadata ?? {};
  const annotations: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata.annotations ?? {})) {
    if (FLEET_ANNOTATION.test(name)) annotations[name] = value;
  }
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  return {
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      deletionTimestamp: metadata.deletionTimestamp,
      labels: metadata.labels,
      annotations,
      ownerReferences: metadata.ownerReferences?.filter((ref) => ref.controller),
    },
    spec: {
      containers: (pod.spec?.containers ?? []).map((c) => ({ name: c.name, ports: c.ports })),
    },
    status: {
      phase: pod.status?.phase,
      podIP: pod.status?.podIP,
      conditions: ready ? [ready] : undefined,
    },
  };
}
