import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { recordWorkspaceUse } from "../../shared/actions/instances.js";
import type { ClientPod, Workspace } from "../../shared/instance/clientpod.js";
import { workspaceNameOf } from "../../shared/instance/parts.js";
import {
  ANNOTATION_WANTED_SIZE,
  isSmallerThan,
  lastUsedPatch,
  type WorkspaceSettings,
  workspacePvc,
  workspaceStateOf,
} from "../../shared/instance/workspace.js";
import { type Kube, KubeApiError } from "../../shared/kube/client.js";
import { createRefused } from "./refusals.js";

/** How often a request re-reads a workspace claim that is being deleted. */
const DELETION_POLL_MS = 250;

/**
 * Makes the instance's workspace claim, or finds the one an earlier instance left and
 * records its use now; undefined while a claim of that name is still being deleted (the
 * reaper's retention pass got there first) and `deadline` passes before it is gone, in
 * which case the Pod must wait: a Pod over a terminating claim would never start.
 *
 * Finding a kept claim is a write, not a read: it moves the claim's resourceVersion, so a
 * retention delete the reaper planned before it fails its precondition, and the workspace
 * a user is coming back to is never deleted under them.
 */
export async function ensureWorkspace(
  kube: Kube,
  clientPod: ClientPod,
  settings: WorkspaceSettings,
  now: () => Date,
  deadline: number,
  signal?: AbortSignal,
): Promise<Workspace | undefined> {
  const { uid } = clientPod.metadata;
  // A claimed pool member's workspace claim has the member's name.
  const name = workspaceNameOf(clientPod);
  const owner = {
    name,
    uid,
    clientId: clientPod.spec.clientId,
    instanceId: clientPod.spec.instanceId,
    plan: clientPod.spec.plan,
  };
  // Loops only when the claim goes between our create and our patch, or was going.
  for (let attempt = 0; attempt < 3; attempt++) {
    const created = await kube.workspaces
      .create(workspacePvc(owner, settings, now()))
      .catch(createRefused);
    if (created.created) return { name, state: "new" };
    // 409: it exists. Record the use; the answer says whose it was.
    const claim = await kube.workspaces.patch(name, lastUsedPatch(now()));
    if (claim && !claim.metadata?.deletionTimestamp) {
      // Kept from a plan with smaller workspaces: grown to this plan's size where it can be.
      await fitWorkspace(kube, name, settings.size, claim);
      return { name, state: workspaceStateOf(claim, uid) };
    }
    // Gone between the two calls, or going: make it again once it is gone.
    if (claim && !(await gone(kube, name, deadline, signal))) return undefined;
  }
  throw new Error(`the workspace claim ${name} kept vanishing while being made`);
}

/**
 * Grows a workspace claim to `size` when it asks for less (a plan with bigger workspaces): a
 * patch of its request, which the API server accepts only when its StorageClass allows volume
 * expansion (`allowVolumeExpansion`; the volume then grows as its driver can). Refused, it
 * is left as it is and the size it should have is written on it (ANNOTATION_WANTED_SIZE) for
 * admin to show. Never shrinks one. `claim` is the claim as just read, if at hand.
 */
export async function fitWorkspace(
  kube: Kube,
  name: string,
  size: string,
  claim?: V1PersistentVolumeClaim,
): Promise<void> {
  const current = claim ?? (await kube.workspaces.get(name));
  if (!current || current.metadata?.deletionTimestamp) return;
  const wanted = current.metadata?.annotations?.[ANNOTATION_WANTED_SIZE];
  if (!isSmallerThan(current, size)) {
    if (wanted !== undefined) await kube.workspaces.patch(name, wantedSizePatch(null));
    return;
  }
  try {
    await kube.workspaces.patch(name, {
      ...wantedSizePatch(null),
      spec: { resources: { requests: { storage: size } } },
    });
  } catch (error) {
    // 403: its StorageClass does not allow expansion; 422: its volume cannot be resized.
    if (!(error instanceof KubeApiError) || (error.status !== 403 && error.status !== 422)) {
      throw error;
    }
    if (wanted !== size) await kube.workspaces.patch(name, wantedSizePatch(size));
  }
}

const wantedSizePatch = (size: string | null) => ({
  metadata: { annotations: { [ANNOTATION_WANTED_SIZE]: size } },
});

/** What became of a workspace when its instance was deleted; null: there was none. */
export type WorkspaceEnd = "kept" | "purged" | null;

/**
 * Ends a workspace's use by a deleted instance: kept and marked used now, or with `purge`
 * deleted (with or without an instance; Kubernetes keeps a claim a Pod still mounts until
 * that Pod is gone).
 */
export async function endWorkspace(
  kube: Kube,
  name: string,
  { deleted, purge }: { deleted: boolean; purge: boolean },
  now: Date,
): Promise<WorkspaceEnd> {
  if (purge) return (await kube.workspaces.delete(name)) === "deleted" ? "purged" : null;
  return deleted && (await recordWorkspaceUse(kube, name, now)) ? "kept" : null;
}

async function gone(kube: Kube, name: string, deadline: number, signal?: AbortSignal) {
  while (Date.now() < deadline && !signal?.aborted) {
    await new Promise((resolve) => setTimeout(resolve, DELETION_POLL_MS));
    if (!(await kube.workspaces.get(name))) return true;
  }
  return false;
}
