import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPodStatus } from "./clientpod.js";
import { type ExpiryDefaults, expiryOf } from "./expiry.js";
import { instancePortOf } from "./pod-spec.js";
import { hasPodEnded, ownerUidOf } from "./pod-status.js";
import type { InstanceRecord } from "./record.js";
import { isServing } from "./serving.js";

export type InstanceStatus = "starting" | "ready" | "failed" | "terminating";

export interface Connection {
  host: string;
  port: number;
  url: string;
}

export const isTerminating = (pod: V1Pod): boolean => Boolean(pod.metadata?.deletionTimestamp);

/**
 * Whether a request may answer from this Pod alone, without reading its ClientPod. Only the
 * Pod's own state counts (reading the ClientPod would double the warm path's cost): it has
 * not ended, is not being deleted (a deleted ClientPod reaches its Pod that way, through the
 * garbage collector), and still has its ClientPod as owner (a ClientPod deleted with
 * `--cascade=orphan` leaves its Pod without one). Anything else goes the repair path, which
 * reads the ClientPod.
 */
export function isAnswerableAlone(pod: V1Pod): boolean {
  return !hasPodEnded(pod) && !isTerminating(pod) && ownerUidOf(pod) !== undefined;
}

export function statusOf(pod: V1Pod | undefined): InstanceStatus {
  if (!pod) return "starting";
  if (isTerminating(pod)) return "terminating";
  if (hasPodEnded(pod)) return "failed";
  // Ready means its gptme-server answered, whatever the kubelet says yet (shared/serving.ts).
  return isServing(pod) ? "ready" : "starting";
}

export function connectionOf(pod: V1Pod | undefined): Connection | null {
  const host = pod?.status?.podIP;
  if (!pod || !host) return null;
  const port = instancePortOf(pod);
  const hostInUrl = host.includes(":") ? `[${host}]` : host;
  return { host, port, url: `http://${hostInUrl}:${port}` };
}

/**
 * Whether the ClientPod's recorded phase lags its Pod's (Pending when the Pod runs, say): the
 * request that sees it writes, so PHASE follows the Pod at no cost while nothing changes.
 */
export function isPhaseStale(record: InstanceRecord, pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== undefined && record.phase !== phase;
}

/** Whether a request should write `lastActivity`: at most once per interval per instance. */
export function isActivityDue(record: InstanceRecord, now: Date, intervalMs: number): boolean {
  const last = record.lastActivity ?? record.createdAt;
  return now.getTime() - last.getTime() >= intervalMs;
}

/**
 * The status an activity write sets: the activity, what is known of the Pod, and when the
 * instance expires from now on (shown by `kubectl get cpod`).
 */
export function activityStatus(
  record: InstanceRecord | undefined,
  now: Date,
  pod: V1Pod | undefined,
  defaults: ExpiryDefaults,
): ClientPodStatus {
  return {
    lastActivity: now.toISOString(),
    phase: pod?.status?.phase,
    podIP: pod?.status?.podIP,
    expiresAt:
      record && expiryOf({ ...record, lastActivity: now }, defaults).expiresAt.toISOString(),
  };
}
