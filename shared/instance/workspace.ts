import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { fleetLabels, LABEL_PLAN, type WorkspaceState } from "./clientpod.js";

// An instance's workspace is a PersistentVolumeClaim of the instance's own name, with no
// owner: it outlives the instance, so a user who comes back finds their conversations.
// Ending it is deliberate: a purge, or the reaper once nobody has used it for the retention.

/** When an instance last used the claim: written when one is created over it, and when it ends. */
export const ANNOTATION_LAST_USED = "gptme.ai/last-used";
/** The uid of the ClientPod the claim was created for: later instances find it "kept". */
export const ANNOTATION_CREATED_FOR = "gptme.ai/created-for";
/**
 * On a workspace claim: the size its instance's plan asks for, when the claim is smaller and
 * its StorageClass refused to expand it (admin shows it; removed once the claim has it).
 */
export const ANNOTATION_WANTED_SIZE = "gptme.ai/wanted-size";
/** The name of the Pod volume the workspace claim backs. */
export const WORKSPACE_VOLUME = "workspace";
/**
 * Where the workspace is mounted when the template has no `workspace` volume of its own, and
 * the directories gptme-server then keeps its data and configuration in.
 */
export const DEFAULT_WORKSPACE_MOUNT = "/workspace";

export interface WorkspaceSettings {
  /** The claim's storage request (a Kubernetes quantity). */
  size: string;
  /** Unset: the cluster's default StorageClass. */
  storageClass: string | undefined;
}

/** The claim of a new instance's workspace; its name is the instance's. */
export function workspacePvc(
  owner: { name: string; uid: string; clientId: string; instanceId: string; plan?: string },
  settings: WorkspaceSettings,
  now: Date,
): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: owner.name,
      labels: {
        ...fleetLabels(owner.clientId, owner.instanceId),
        ...(owner.plan === undefined ? {} : { [LABEL_PLAN]: owner.plan }),
      },
      annotations: {
        [ANNOTATION_CREATED_FOR]: owner.uid,
        [ANNOTATION_LAST_USED]: now.toISOString(),
      },
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: settings.size } },
      ...(settings.storageClass === undefined ? {} : { storageClassName: settings.storageClass }),
    },
  };
}

/** Whether the claim was created for the ClientPod of `uid`, or kept from an earlier one. */
export function workspaceStateOf(claim: V1PersistentVolumeClaim, uid: string): WorkspaceState {
  return claim.metadata?.annotations?.[ANNOTATION_CREATED_FOR] === uid ? "new" : "kept";
}

/** The merge patch that records a use of the workspace now. */
export function lastUsedPatch(now: Date) {
  return { metadata: { annotations: { [ANNOTATION_LAST_USED]: now.toISOString() } } };
}

/** When an instance last used the claim (its creation when the annotation is missing or unreadable). */
export function lastUsedOf(claim: V1PersistentVolumeClaim): Date | undefined {
  const text = claim.metadata?.annotations?.[ANNOTATION_LAST_USED];
  const recorded = text === undefined ? undefined : new Date(text);
  if (recorded && !Number.isNaN(recorded.getTime())) return recorded;
  const created = claim.metadata?.creationTimestamp;
  return created === undefined ? undefined : new Date(created);
}

/** The names of the claims that Pods not yet gone mount (a terminating Pod may still write). */
export function mountedWorkspacesOf(pods: readonly V1Pod[]): Set<string> {
  const mounted = new Set<string>();
  for (const pod of pods) {
    for (const volume of pod.spec?.volumes ?? []) {
      const claim = volume.persistentVolumeClaim?.claimName;
      if (claim) mounted.add(claim);
    }
  }
  return mounted;
}

const STORAGE_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A storage quantity ("10Gi", "500M", "1.5Ti") in bytes; undefined when it is not one. */
export function storageBytesOf(quantity: string | undefined): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(quantity?.trim() ?? "");
  if (!match) return undefined;
  return Number(match[1]) * (STORAGE_UNITS[match[2] ?? ""] ?? Number.NaN);
}

/** What a claim asks for now: its requested storage. */
export const requestedSizeOf = (claim: V1PersistentVolumeClaim): string | undefined =>
  claim.spec?.resources?.requests?.storage;

/** Whether a claim asks for less than `size` (an unreadable quantity never counts as less). */
export function isSmallerThan(claim: V1PersistentVolumeClaim, size: string): boolean {
  const has = storageBytesOf(requestedSizeOf(claim));
  const wanted = storageBytesOf(size);
  return has !== undefined && wanted !== undefined && has < wanted;
}
