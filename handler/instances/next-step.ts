import type { V1Pod } from "@kubernetes/client-node";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { hasPodEnded, ownerUidOf } from "../../shared/instance/pod-status.js";
import { type InstanceRecord, recordFromPod, recordOf } from "../../shared/instance/record.js";
import {
  isActivityDue,
  isAnswerableAlone,
  isPhaseStale,
  isTerminating,
} from "../../shared/instance/status.js";

// What a request does next for an instance, decided from what it has read and nothing else:
// the handler's counterpart of the reaper's plan. Instances (instances.ts) reads, asks here,
// acts, and reads again; every decision is a plain function, tested case by case.

/** When this replica last knew the instance active: its own write, or one it read. */
export type KnownActivity = (name: string) => Date | undefined;

/**
 * The warm path's step, from the instance's Pod alone (read by name from the API server's
 * cache): `answer` from the Pod's mirror of its record; `record-activity` first when its
 * activity or phase is due; `repair` when the Pod cannot answer alone (missing, ended,
 * terminating, orphaned, or without its mirror), which reads the ClientPod.
 */
export type WarmStep =
  | { kind: "answer"; record: InstanceRecord }
  | { kind: "record-activity"; record: InstanceRecord }
  | { kind: "repair" };

export function warmStepOf(
  pod: V1Pod | undefined,
  now: Date,
  intervalMs: number,
  known: KnownActivity,
): WarmStep {
  if (!pod || !isAnswerableAlone(pod)) return { kind: "repair" };
  const mirrored = recordFromPod(pod);
  if (!mirrored) return { kind: "repair" };
  const record = withKnownActivity(mirrored, known(mirrored.name));
  if (isActivityDue(record, now, intervalMs) || isPhaseStale(record, pod)) {
    return { kind: "record-activity", record };
  }
  return { kind: "answer", record };
}

/**
 * The record with the latest activity this replica knows of: the Pod's mirror is not
 * rewritten for activity alone (every Pod write wakes its watchers, the kubelet's included),
 * so it lags the ClientPod, the truth.
 */
export function withKnownActivity(record: InstanceRecord, known: Date | undefined): InstanceRecord {
  const mirrored = record.lastActivity ?? record.createdAt;
  return known && known > mirrored ? { ...record, lastActivity: known } : record;
}

/** What to do with a ClientPod's Pod, as read: keep it, replace it, wait it out, or start one. */
export type PodStep = "keep" | "replace" | "wait-out" | "start";

export function podStepOf(clientPod: ClientPod, pod: V1Pod | undefined): PodStep {
  if (!pod) return "start";
  if (isTerminating(pod)) return "wait-out";
  // Ended, or left over from an earlier ClientPod of the same name.
  if (hasPodEnded(pod) || ownerUidOf(pod) !== clientPod.metadata.uid) return "replace";
  return "keep";
}

/**
 * Whether the repair path writes activity for an instance it found (not one it created:
 * creation is the first activity). Its own Pod alone says anything about phase and IP.
 */
export function isRepairTouchDue(
  clientPod: ClientPod,
  created: boolean,
  now: Date,
  intervalMs: number,
  known: KnownActivity,
): boolean {
  if (created) return false;
  const record = withKnownActivity(recordOf(clientPod), known(clientPod.metadata.name));
  return isActivityDue(record, now, intervalMs);
}
