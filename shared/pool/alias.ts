import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  type ClientPod,
  fleetLabels,
  LABEL_KIND,
  LABEL_MANAGED_BY,
} from "../instance/clientpod.js";

// A claimed instance keeps its member's Pod, and so the Pod's name (`gptme-pool-…`), which its
// gateway path and preview host name. While the Pod lives, its owner reference leads to the
// instance; once it is gone (evicted, drained, ended), only this alias does: a ConfigMap of
// the member's name, owned by the instance's ClientPod (the garbage collector removes it with
// the instance), naming the instance. A read by name, from the API server's cache, whatever
// the fleet's size: a label query would walk every ClientPod of the namespace.

export const POD_ALIAS_KIND = "pod-alias";
const INSTANCE_KEY = "instance";

/** The alias from a member's name to the instance that adopted its Pod. */
export function podAliasManifest(memberName: string, instance: ClientPod): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: memberName,
      labels: {
        ...fleetLabels(instance.spec.clientId, instance.spec.instanceId),
        [LABEL_KIND]: POD_ALIAS_KIND,
      },
      ownerReferences: [
        {
          apiVersion: instance.apiVersion,
          kind: instance.kind,
          name: instance.metadata.name,
          uid: instance.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: { [INSTANCE_KEY]: instance.metadata.name },
  };
}

/** The instance an alias names; undefined for any other ConfigMap of that name. */
export function aliasedInstanceOf(object: V1ConfigMap | undefined): string | undefined {
  const labels = object?.metadata?.labels;
  if (labels?.[LABEL_KIND] !== POD_ALIAS_KIND || labels[LABEL_MANAGED_BY] === undefined) {
    return undefined;
  }
  if (object?.metadata?.deletionTimestamp) return undefined;
  return object?.data?.[INSTANCE_KEY];
}

// The same for a claimed instance's workspace, named after the member too: once the instance
// is gone, its client's next instance of that id must find the workspace kept for it. A
// ConfigMap of the instance's name, owned by the workspace (it lives as long as the workspace
// does), naming it; a returning client's request reads it by name from the cache.

export const WORKSPACE_ALIAS_KIND = "workspace-alias";
const WORKSPACE_KEY = "workspace";

export function workspaceAliasManifest(
  instance: ClientPod,
  workspace: { name: string; uid: string },
): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: instance.metadata.name,
      labels: {
        ...fleetLabels(instance.spec.clientId, instance.spec.instanceId),
        [LABEL_KIND]: WORKSPACE_ALIAS_KIND,
      },
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          name: workspace.name,
          uid: workspace.uid,
          blockOwnerDeletion: false,
        },
      ],
    },
    data: { [WORKSPACE_KEY]: workspace.name },
  };
}

/** The workspace an alias names; undefined for any other ConfigMap of that name. */
export function aliasedWorkspaceOf(object: V1ConfigMap | undefined): string | undefined {
  const labels = object?.metadata?.labels;
  if (labels?.[LABEL_KIND] !== WORKSPACE_ALIAS_KIND || labels[LABEL_MANAGED_BY] === undefined) {
    return undefined;
  }
  if (object?.metadata?.deletionTimestamp) return undefined;
  return object?.data?.[WORKSPACE_KEY];
}
