import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import type { H3 } from "h3";
import type { HandlerConfig } from "../../shared/config/load.js";
import { LABEL_CLIENT, LABEL_INSTANCE, LABEL_PLAN } from "../../shared/instance/clientpod.js";
import { instanceNameOf } from "../../shared/instance/names.js";
import {
  ANNOTATION_WANTED_SIZE,
  lastUsedOf,
  mountedWorkspacesOf,
} from "../../shared/instance/workspace.js";
import type { Kube } from "../../shared/kube/client.js";
import { requireAdmin } from "../identity/auth.js";
import { expiredToken, pageOptions, pageQuery, parseQuery, podsByName } from "./admin-paging.js";

/** One workspace, as the admin API shows it. */
export interface WorkspaceItem {
  name: string;
  clientId: string | null;
  instanceId: string | null;
  /** What the claim has (its capacity once bound), else what it asked for. */
  size: string | null;
  storageClass: string | null;
  /** The claim's phase: Pending, Bound or Lost. */
  phase: string | null;
  createdAt: string | null;
  lastUsed: string | null;
  /** Whether a Pod (an instance running or starting) mounts it now. */
  mounted: boolean;
  /**
   * When the reaper may delete it (unused for WORKSPACE_RETENTION); null while mounted, and
   * for a claim already being deleted.
   */
  deletableAt: string | null;
  terminating: boolean;
  /**
   * The size its instance's plan gives, when the claim is smaller and its StorageClass would
   * not expand it (no `allowVolumeExpansion`); null otherwise.
   */
  wantedSize: string | null;
  /** The plan of the instance it was made for; null: from before plans. */
  plan: string | null;
}

/** `GET /admin/workspaces`: the workspaces of every client (or one), a page at a time. */
export function adminWorkspaceRoutes(app: H3, config: HandlerConfig, kube: Kube): void {
  app.get("/admin/workspaces", async (event) => {
    requireAdmin(event.req.headers.get("authorization"), config);
    const query = parseQuery(pageQuery, event);
    // A page of workspaces, then the Pods that may mount them, by name from the cache: the
    // one of the workspace's name (its own instance's, or the pool member's it was made for)
    // and its instance's (a later instance over the kept workspace).
    const page = await kube.workspaces.list(pageOptions(query)).catch(expiredToken);
    const pods = await podsByName(kube, page.items.flatMap(mountersOf));
    const mounted = mountedWorkspacesOf([...pods.values()]);
    const items = page.items.map((claim) =>
      workspaceItem(claim, mounted.has(claim.metadata?.name ?? ""), config.workspaceRetentionMs),
    );
    return { items, continue: page.continue ?? "" };
  });
}

export function workspaceItem(
  claim: V1PersistentVolumeClaim,
  mounted: boolean,
  retentionMs: number,
): WorkspaceItem {
  const labels = claim.metadata?.labels ?? {};
  const lastUsed = lastUsedOf(claim);
  const terminating = Boolean(claim.metadata?.deletionTimestamp);
  return {
    name: claim.metadata?.name ?? "",
    clientId: labels[LABEL_CLIENT] ?? null,
    instanceId: labels[LABEL_INSTANCE] ?? null,
    size: claim.status?.capacity?.storage ?? claim.spec?.resources?.requests?.storage ?? null,
    storageClass: claim.spec?.storageClassName ?? null,
    phase: claim.status?.phase ?? null,
    createdAt: isoOf(claim.metadata?.creationTimestamp),
    lastUsed: lastUsed ? lastUsed.toISOString() : null,
    mounted,
    deletableAt:
      mounted || terminating || !lastUsed
        ? null
        : new Date(lastUsed.getTime() + retentionMs).toISOString(),
    terminating,
    wantedSize: claim.metadata?.annotations?.[ANNOTATION_WANTED_SIZE] ?? null,
    plan: labels[LABEL_PLAN] ?? null,
  };
}

function isoOf(value: Date | string | undefined): string | null {
  return value === undefined ? null : new Date(value).toISOString();
}

/** The names of the Pods that may mount a workspace. */
function mountersOf(workspace: V1PersistentVolumeClaim): string[] {
  const name = workspace.metadata?.name ?? "";
  const labels = workspace.metadata?.labels ?? {};
  const client = labels[LABEL_CLIENT];
  const instance = labels[LABEL_INSTANCE];
  return client && instance ? [name, instanceNameOf(client, instance)] : [name];
}
