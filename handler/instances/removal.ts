import { deleteInstance } from "../../shared/actions/instances.js";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { partsOf } from "../../shared/instance/parts.js";
import type { InstanceDeps } from "./deps.js";
import { endWorkspace, type WorkspaceEnd } from "./workspace.js";

/** An instance's plan as its metrics name it: `none` for one from before plans. */
export const planLabelOf = (clientPod: ClientPod | undefined): string =>
  clientPod?.spec.plan ?? "none";

/** What a delete did: the instance, and its workspace (null: it had none). */
export interface Removal {
  deleted: boolean;
  workspace: WorkspaceEnd;
}

/**
 * Deletes an instance by name. Its workspace stays, marked as used now, unless `purge`,
 * which deletes it too, with or without an instance (Kubernetes keeps a claim a Pod still
 * mounts until that Pod is gone). Undefined when there was nothing to delete. `forget` drops
 * what this replica remembers of it.
 */
export async function removeInstance(
  deps: InstanceDeps,
  name: string,
  { purge = false }: { purge?: boolean },
  forget: () => void,
): Promise<Removal | undefined> {
  const { kube } = deps;
  // Its Pod and claim may be named after the pool member it was made from.
  const clientPod = await kube.clientPods.get(name);
  const parts = clientPod ? partsOf(clientPod) : { pod: name, workspace: name };
  const deleted = (await deleteInstance(kube, name, undefined, parts.pod)) === "deleted";
  deps.onRemoved?.(parts.pod);
  forget();
  if (deleted) deps.events.deleted(planLabelOf(clientPod));
  const workspace = await endWorkspace(kube, parts.workspace, { deleted, purge }, deps.now());
  return deleted || workspace === "purged" ? { deleted, workspace } : undefined;
}
