import { z } from "zod";

export const GROUP = "gptme.ai";
export const VERSION = "v1";
export const PLURAL = "clientpods";
export const KIND = "ClientPod";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "gptme-fleet";
export const LABEL_CLIENT = "gptme.ai/client";
export const LABEL_INSTANCE = "gptme.ai/instance";
/** The plan an instance (or pool member) was made for: ClientPod, Pod and workspace claim. */
export const LABEL_PLAN = "gptme.ai/plan";
/** The plan every client has without PLANS_FILE (and what objects from before plans were). */
export const DEFAULT_PLAN = "default";
/** What a fleet object other than an instance's is: a sign-in code, the reaper's stats, a pool alias. */
export const LABEL_KIND = "gptme.ai/kind";
/** Which token key an instance's token is derived from (its id, not the key). */
export const ANNOTATION_TOKEN_KEY = "gptme.ai/token-key";

/** Selects every object the fleet created. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
/** Selects one client's objects. */
export const clientSelector = (clientId: string) =>
  `${MANAGED_SELECTOR},${LABEL_CLIENT}=${clientId}`;

/** Selects one instance's objects (its Pod, whatever the Pod's name). */
export const instanceSelector = (clientId: string, instanceId: string) =>
  `${clientSelector(clientId)},${LABEL_INSTANCE}=${instanceId}`;

export function fleetLabels(clientId: string, instanceId: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_CLIENT]: clientId, [LABEL_INSTANCE]: instanceId };
}

const timestamp = z
  .union([z.string(), z.date()])
  .transform((v) => (v instanceof Date ? v : new Date(v)));

/** A ClientPod as read back from the API server; unknown fields pass through untouched. */
export const clientPodSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z.object({
    name: z.string(),
    namespace: z.string(),
    uid: z.string(),
    resourceVersion: z.string(),
    creationTimestamp: timestamp,
    deletionTimestamp: timestamp.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.object({
    clientId: z.string().regex(/^[0-9a-f]{16,}$/),
    instanceId: z.string(),
    podTemplate: z.string(),
    /** Unset on instances made before plans. */
    plan: z.string().optional(),
    idleTimeoutSeconds: z.number().int().positive().optional(),
    maxLifetimeSeconds: z.number().int().positive().optional(),
  }),
  status: z
    .object({
      lastActivity: timestamp.optional(),
      phase: z.string().optional(),
      podIP: z.string().optional(),
      message: z.string().optional(),
      expiresAt: timestamp.optional(),
      lastReap: z
        .object({ at: timestamp, verdict: z.string(), detail: z.string().optional() })
        .optional(),
      workspace: z.object({ name: z.string(), state: z.enum(["new", "kept"]) }).optional(),
      revision: z.string().optional(),
    })
    .optional(),
});

export type ClientPod = z.infer<typeof clientPodSchema>;

/** The status the fleet writes; every field optional because writes are merge patches. */
/**
 * `new`: created for this instance; `kept`: left by an earlier instance of the same client
 * and instance id (a fresh gptme-server over the user's earlier conversations).
 */
export type WorkspaceState = "new" | "kept";

export interface Workspace {
  name: string;
  state: WorkspaceState;
}

export interface ClientPodStatus {
  lastActivity?: string;
  phase?: string;
  podIP?: string;
  message?: string;
  /**
   * When the reaper may delete the instance, as of this write (for `kubectl get cpod`; the
   * handler and the reaper compute it afresh from the timeouts whenever they decide).
   */
  expiresAt?: string;
  lastReap?: LastReap;
  /** The instance's workspace, once its claim is made or found. */
  workspace?: Workspace;
  /** The revision (shared/revision.ts) of the Pod last started for the instance. */
  revision?: string;
}

/** The reaper's latest verdict on an instance it kept (a deleted one has no status to show). */
export interface LastReap {
  at: string;
  /** `busy`: its gptme-server was working when the instance was idle by the clock. */
  verdict: "busy";
  /** The signal that decided, e.g. "generating 1, event streams 0". */
  detail: string;
}

export interface NewClientPod {
  name: string;
  clientId: string;
  instanceId: string;
  podTemplate: string;
  /** The plan it is made for, with its timeouts (seconds) recorded so the reaper needs no plans. */
  plan?: {
    name: string;
    idleTimeoutSeconds: number | undefined;
    maxLifetimeSeconds: number | undefined;
  };
  /** The id of the key the instance's token is derived from (instances made by the handler). */
  tokenKeyId?: string;
}

/** The manifest of a new ClientPod. */
export function clientPodManifest(spec: NewClientPod) {
  const { plan } = spec;
  const labels: Record<string, string> = fleetLabels(spec.clientId, spec.instanceId);
  if (plan) labels[LABEL_PLAN] = plan.name;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: spec.name,
      labels,
      annotations: (spec.tokenKeyId ? { [ANNOTATION_TOKEN_KEY]: spec.tokenKeyId } : undefined) as
        | Record<string, string>
        | undefined,
    },
    spec: {
      clientId: spec.clientId,
      instanceId: spec.instanceId,
      podTemplate: spec.podTemplate,
      ...(plan && {
        plan: plan.name,
        idleTimeoutSeconds: plan.idleTimeoutSeconds,
        maxLifetimeSeconds: plan.maxLifetimeSeconds,
      }),
    },
  };
}
