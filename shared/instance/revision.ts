import { createHash } from "node:crypto";
import type { V1EnvVar, V1PodTemplate } from "@kubernetes/client-node";
import type { ClientPod } from "./clientpod.js";
import { buildPod, type ResourceDefaults } from "./pod-spec.js";

/** On a Pod (and mirrored nowhere else): the revision it was built from. */
export const ANNOTATION_REVISION = "gptme.ai/revision";

/** What the fleet adds to a template that is the same for every instance. */
export interface RevisionSettings extends ResourceDefaults {
  /** Whether instances get a workspace claim (WORKSPACES=on). */
  workspaces: boolean;
}

// Every per-instance value (names, uid, labels, the token Secret's and the claim's names)
// is replaced by one constant, so two instances made from the same template by the same
// fleet settings always share a revision, and any change to what their Pods would run
// (image, args, resources, security, volumes) gives a new one.
const PLACEHOLDER_OWNER: ClientPod = {
  apiVersion: "gptme.ai/v1",
  kind: "ClientPod",
  metadata: {
    name: "instance",
    namespace: "fleet",
    uid: "uid",
    resourceVersion: "0",
    creationTimestamp: new Date(0),
  },
  spec: { clientId: "0".repeat(16), instanceId: "instance", podTemplate: "template" },
};
/** The shape of the token variable the handler adds (its Secret's name is per instance). */
const PLACEHOLDER_TOKEN_ENV: V1EnvVar = {
  name: "GPTME_SERVER_TOKEN",
  valueFrom: { secretKeyRef: { name: "token", key: "token" } },
};

/**
 * The revision of the effective Pod spec an instance gets from `template` under `settings`:
 * 10 hex digits of a SHA-256 over the Pod the fleet would build, with every per-instance
 * value made constant. The handler and the reaper compute it alike, from the same template
 * and the same shared settings (the fleet-config ConfigMap).
 */
export function revisionOf(template: V1PodTemplate, settings: RevisionSettings): string {
  const pod = buildPod({ template: template.template }, PLACEHOLDER_OWNER, {
    annotations: {},
    resources: {
      defaultCpuLimit: settings.defaultCpuLimit,
      defaultMemoryLimit: settings.defaultMemoryLimit,
    },
    env: [PLACEHOLDER_TOKEN_ENV],
    workspacePvc: settings.workspaces ? "workspace" : undefined,
  });
  return createHash("sha256").update(canonicalJson(pod)).digest("hex").slice(0, 10);
}

/** The revision a Pod records; undefined for a Pod made before revisions existed. */
export function podRevisionOf(pod: {
  metadata?: { annotations?: Record<string, string> };
}): string | undefined {
  return pod.metadata?.annotations?.[ANNOTATION_REVISION];
}

/**
 * JSON with object keys sorted and undefined left out: the same object always gives the
 * same text, whether it came from a YAML file, the typed client or a spread.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value instanceof Date) return value.toISOString();
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, sorted(v)]);
  return Object.fromEntries(entries);
}
