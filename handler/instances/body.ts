import type { V1Pod } from "@kubernetes/client-node";
import type { Workspace } from "../../shared/instance/clientpod.js";
import { type ExpiryDefaults, expiryOf } from "../../shared/instance/expiry.js";
import { GATEWAY_PREFIX } from "../../shared/instance/names.js";
import type { InstanceRecord } from "../../shared/instance/record.js";
import {
  type Connection,
  connectionOf,
  type InstanceStatus,
  statusOf,
} from "../../shared/instance/status.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { tokenOf } from "../../shared/tokens/instance-token.js";

// The instance as the client API answers it: what GET /instances/:id, the admin API and
// sign-in put in their bodies.

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
  /** The plan it was made for (or moved to); null for an instance from before plans. */
  plan: string | null;
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
    plan: record.plan ?? null,
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
