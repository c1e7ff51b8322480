import type { V1Pod } from "@kubernetes/client-node";
import type { Workspace } from "./clientpod.js";
import { ANNOTATION_TOKEN_KEY, type ClientPod, LABEL_PLAN } from "./clientpod.js";
import {
  ANNOTATION_TOKEN_SUBJECT,
  ANNOTATION_WORKSPACE_NAME,
  podNameOf,
  tokenSubjectOf,
} from "./parts.js";
import { ownerNameOf, ownerUidOf } from "./pod-status.js";

// The Pod mirrors what a request needs from its ClientPod, so that a request for a running
// instance reads the Pod alone (one API call). The ClientPod stays the truth: the mirror is
// written when a Pod is created and rewritten when anything but activity changes (activity
// alone would rewrite every busy instance's Pod, waking its watchers, each interval; the
// ClientPod and each replica's memory of it carry activity instead).
export const ANNOTATION_CREATED_AT = "gptme.ai/created-at";
export const ANNOTATION_LAST_ACTIVITY = "gptme.ai/last-activity";
export const ANNOTATION_IDLE_TIMEOUT = "gptme.ai/idle-timeout-seconds";
export const ANNOTATION_MAX_LIFETIME = "gptme.ai/max-lifetime-seconds";
/** The workspace's state; its claim has the instance's name. */
export const ANNOTATION_WORKSPACE = "gptme.ai/workspace";
/** The Pod phase the ClientPod last recorded (its PHASE column), so a change is seen warm. */
export const ANNOTATION_PHASE = "gptme.ai/phase";

/** The facts about an instance that do not come from its Pod's state. */
export interface InstanceRecord {
  /** The ClientPod's name. */
  name: string;
  /** Its Pod's (and workspace claim's) name: the ClientPod's, or the pool member's it adopted. */
  podName: string;
  /** The ClientPod's uid. */
  uid: string;
  /** The uid its token is derived from: its own, or the adopted pool member's. */
  tokenSubject: string;
  /** The id of the key this instance's token is derived from; unset on older instances. */
  tokenKeyId: string | undefined;
  instanceId: string;
  clientId: string;
  createdAt: Date;
  lastActivity: Date | undefined;
  idleTimeoutSeconds: number | undefined;
  maxLifetimeSeconds: number | undefined;
  /** Undefined for an instance without one (WORKSPACES=off when it was made). */
  workspace: Workspace | undefined;
  /** The Pod phase last recorded on the ClientPod (`kubectl get cpod` shows it). */
  phase?: string | undefined;
  /** Its client's plan when it was made (or last moved); undefined: made before plans. */
  plan?: string | undefined;
}

export function recordOf(cp: ClientPod): InstanceRecord {
  return {
    name: cp.metadata.name,
    podName: podNameOf(cp),
    uid: cp.metadata.uid,
    tokenSubject: tokenSubjectOf(cp),
    tokenKeyId: cp.metadata.annotations?.[ANNOTATION_TOKEN_KEY],
    instanceId: cp.spec.instanceId,
    clientId: cp.spec.clientId,
    createdAt: cp.metadata.creationTimestamp,
    lastActivity: cp.status?.lastActivity,
    idleTimeoutSeconds: cp.spec.idleTimeoutSeconds,
    maxLifetimeSeconds: cp.spec.maxLifetimeSeconds,
    workspace: cp.status?.workspace,
    phase: cp.status?.phase,
    plan: cp.spec.plan,
  };
}

/** The labels that mirror a ClientPod onto its Pod, beside the fleet's own: its plan. */
export function mirrorLabels(cp: ClientPod): Record<string, string | null> {
  return { [LABEL_PLAN]: cp.spec.plan ?? null };
}

/** The annotations that mirror a ClientPod onto its Pod. */
export function mirrorAnnotations(cp: ClientPod): Record<string, string> {
  const record = recordOf(cp);
  const annotations: Record<string, string> = {
    [ANNOTATION_CREATED_AT]: record.createdAt.toISOString(),
    [ANNOTATION_LAST_ACTIVITY]: (record.lastActivity ?? record.createdAt).toISOString(),
  };
  if (record.tokenKeyId !== undefined) annotations[ANNOTATION_TOKEN_KEY] = record.tokenKeyId;
  if (record.tokenSubject !== record.uid) {
    annotations[ANNOTATION_TOKEN_SUBJECT] = record.tokenSubject;
  }
  if (record.idleTimeoutSeconds !== undefined) {
    annotations[ANNOTATION_IDLE_TIMEOUT] = String(record.idleTimeoutSeconds);
  }
  if (record.maxLifetimeSeconds !== undefined) {
    annotations[ANNOTATION_MAX_LIFETIME] = String(record.maxLifetimeSeconds);
  }
  if (record.workspace) annotations[ANNOTATION_WORKSPACE] = record.workspace.state;
  if (record.workspace && record.workspace.name !== record.podName) {
    annotations[ANNOTATION_WORKSPACE_NAME] = record.workspace.name;
  }
  if (record.phase) annotations[ANNOTATION_PHASE] = record.phase;
  return annotations;
}

/** Whether the Pod's mirror says all the ClientPod says, activity aside (its plan label too). */
export function isMirrorCurrent(pod: V1Pod, cp: ClientPod): boolean {
  if (pod.metadata?.labels?.[LABEL_PLAN] !== cp.spec.plan) return false;
  const mirrored = pod.metadata?.annotations ?? {};
  const wanted = mirrorAnnotations(cp);
  return Object.entries(wanted).every(
    ([key, value]) => key === ANNOTATION_LAST_ACTIVITY || mirrored[key] === value,
  );
}

/** The record mirrored on a Pod, or undefined when the mirror is missing or unreadable. */
export function recordFromPod(pod: V1Pod): InstanceRecord | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const createdAt = dateOf(annotations[ANNOTATION_CREATED_AT]);
  const lastActivity = dateOf(annotations[ANNOTATION_LAST_ACTIVITY]);
  const podName = pod.metadata?.name;
  // The instance is its ClientPod (the Pod's owner), whose name a pool member's Pod lacks.
  const name = ownerNameOf(pod);
  const instanceId = labels["gptme.ai/instance"];
  const clientId = labels["gptme.ai/client"];
  const uid = ownerUidOf(pod);
  if (!createdAt || !lastActivity || !name || !podName || !instanceId || !clientId || !uid)
    return undefined;
  return {
    name,
    podName,
    uid,
    tokenSubject: annotations[ANNOTATION_TOKEN_SUBJECT] ?? uid,
    tokenKeyId: annotations[ANNOTATION_TOKEN_KEY],
    instanceId,
    clientId,
    createdAt,
    lastActivity,
    idleTimeoutSeconds: secondsOf(annotations[ANNOTATION_IDLE_TIMEOUT]),
    maxLifetimeSeconds: secondsOf(annotations[ANNOTATION_MAX_LIFETIME]),
    workspace: workspaceOf(
      annotations[ANNOTATION_WORKSPACE_NAME] ?? podName,
      annotations[ANNOTATION_WORKSPACE],
    ),
    phase: annotations[ANNOTATION_PHASE],
    plan: labels[LABEL_PLAN],
  };
}

function dateOf(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function workspaceOf(name: string, state: string | undefined): Workspace | undefined {
  return state === "new" || state === "kept" ? { name, state } : undefined;
}

function secondsOf(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}
