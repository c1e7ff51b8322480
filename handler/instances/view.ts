import type { V1Pod } from "@kubernetes/client-node";
import {
  ANNOTATION_TOKEN_KEY,
  type ClientPod,
  type ClientPodStatus,
} from "../../shared/clientpod.js";
import { type ExpiryDefaults, expiryOf } from "../../shared/expiry.js";
import { instanceTokenOf, type TokenKeys } from "../../shared/instance-token.js";
import { instancePortOf } from "../../shared/pod-spec.js";
import { hasPodEnded, ownerNameOf, ownerUidOf } from "../../shared/pods.js";
import {
  ANNOTATION_TOKEN_SUBJECT,
  ANNOTATION_WORKSPACE_CLAIM,
  podNameOf,
  tokenSubjectOf,
} from "../../shared/pool.js";
import { isServing } from "../../shared/serving.js";
import type { Workspace } from "../../shared/workspace.js";

// The Pod mirrors what a request needs from its ClientPod, so that a request for a running
// instance reads the Pod alone (one API call). The ClientPod stays the truth: the mirror is
// rewritten with every activity write and whenever a Pod is created.
export const ANNOTATION_CREATED_AT = "gptme.ai/created-at";
export const ANNOTATION_LAST_ACTIVITY = "gptme.ai/last-activity";
export const ANNOTATION_IDLE_TIMEOUT = "gptme.ai/idle-timeout-seconds";
export const ANNOTATION_MAX_LIFETIME = "gptme.ai/max-lifetime-seconds";
/** The workspace's state; its claim has the instance's name. */
export const ANNOTATION_WORKSPACE = "gptme.ai/workspace";
/** The Pod phase the ClientPod last recorded (its PHASE column), so a change is seen warm. */
export const ANNOTATION_PHASE = "gptme.ai/phase";

export type InstanceStatus = "starting" | "ready" | "failed" | "terminating";

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
}

export interface Connection {
  host: string;
  port: number;
  url: string;
}

/** How a client reaches its gptme-server through the gateway. */
export interface Endpoint {
  path: string;
  /** Null when PUBLIC_URL is unset. */
  url: string | null;
  /** The instance's bearer token; left out of admin views. */
  token?: string;
}

export interface InstanceBody {
  name: string;
  instanceId: string;
  status: InstanceStatus;
  /** True when this request started a new Pod: a fresh gptme-server, no earlier state. */
  created: boolean;
  connection: Connection | null;
  /** Null for an instance made before the gateway, which has no token. */
  endpoint: Endpoint | null;
  /** Null when the instance has no workspace (WORKSPACES=off). */
  workspace: Workspace | null;
  createdAt: string;
  lastActivity: string;
  expiresAt: string;
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
  };
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
    annotations[ANNOTATION_WORKSPACE_CLAIM] = record.workspace.name;
  }
  if (record.phase) annotations[ANNOTATION_PHASE] = record.phase;
  return annotations;
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
      annotations[ANNOTATION_WORKSPACE_CLAIM] ?? podName,
      annotations[ANNOTATION_WORKSPACE],
    ),
    phase: annotations[ANNOTATION_PHASE],
  };
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

/**
 * The Pod serving an instance, of those its labels select (usually one; two while one is
 * replaced): the one a request may answer from alone, else any, so repair sees it.
 */
export function instancePodOf(pods: readonly V1Pod[]): V1Pod | undefined {
  return pods.find(isAnswerableAlone) ?? pods.find((p) => !isTerminating(p)) ?? pods[0];
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

/** The gateway path of every instance: `/api/v1/instances/<name>`. */
export const GATEWAY_PREFIX = "/api/v1/instances/";

/** The instance's token, when its key is known (older instances have none). */
export function tokenOf(record: InstanceRecord, keys: TokenKeys): string | undefined {
  const key = record.tokenKeyId === undefined ? undefined : keys.byId.get(record.tokenKeyId);
  return key && instanceTokenOf(key, record.tokenSubject);
}

/** Where the client reaches the instance through the gateway; `keys` undefined: no token shown. */
export function endpointOf(
  record: InstanceRecord,
  publicUrl: string | undefined,
  keys: TokenKeys | undefined,
): Endpoint | null {
  if (record.tokenKeyId === undefined) return null;
  const path = `${GATEWAY_PREFIX}${record.podName}`;
  const endpoint: Endpoint = { path, url: publicUrl === undefined ? null : `${publicUrl}${path}` };
  if (keys) endpoint.token = tokenOf(record, keys);
  return endpoint;
}

export function instanceBody(
  record: InstanceRecord,
  pod: V1Pod | undefined,
  created: boolean,
  defaults: ExpiryDefaults,
  endpoint: Endpoint | null,
  clientPodTerminating = false,
): InstanceBody {
  const { expiresAt } = expiryOf(record, defaults);
  const body: InstanceBody = {
    name: record.name,
    instanceId: record.instanceId,
    status: clientPodTerminating ? "terminating" : statusOf(pod),
    created,
    connection: connectionOf(pod),
    endpoint,
    workspace: record.workspace ?? null,
    createdAt: record.createdAt.toISOString(),
    lastActivity: (record.lastActivity ?? record.createdAt).toISOString(),
    expiresAt: expiresAt.toISOString(),
  };
  bodyUids.set(body, record.uid);
  return body;
}

// The ClientPod uid behind each body, for what a route adds to it (a sign-in code is owned
// by that ClientPod), kept out of the JSON.
const bodyUids = new WeakMap<InstanceBody, string>();

/** The uid of the ClientPod an instance body describes. */
export function instanceUidOf(body: InstanceBody): string | undefined {
  return bodyUids.get(body);
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
