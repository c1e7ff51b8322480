import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { LABEL_CLIENT, MANAGED_SELECTOR } from "../shared/instance/clientpod.js";
import { HTTP_PORT_NAME } from "../shared/instance/pod-spec.js";
import { ANNOTATION_REVISION, podRevisionOf } from "../shared/instance/revision.js";
import { ANNOTATION_LAST_USED } from "../shared/instance/workspace.js";
import type { Kube, ListOptions, Page } from "../shared/kube/client.js";
import { retryTransient } from "./retry.js";

// What the reaper reads of the fleet: every object in pages, each cut down to the fields its
// plan needs, so a large fleet's pass stays small in memory.

/** Objects per list call: the fleet is read in pages, never in one response. */
export const PAGE_SIZE = 500;

/** Every fleet Pod, page by page, each cut down to the few fields the plan reads. */
export function listPods(kube: Kube): Promise<V1Pod[]> {
  return readAll((options) => kube.pods.list(options), { slim: slimPod });
}

function slimPod(pod: V1Pod): V1Pod {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller);
  const client = pod.metadata?.labels?.[LABEL_CLIENT];
  // The probe's target: the pod IP and the one container port named `http`.
  const serving = pod.spec?.containers.find((c) => c.ports?.some((p) => p.name === HTTP_PORT_NAME));
  const http = serving?.ports?.find((p) => p.name === HTTP_PORT_NAME);
  // An outdated Pod is replaced only if unchanged since this read (its resourceVersion).
  const revision = podRevisionOf(pod);
  return {
    metadata: {
      name: pod.metadata?.name,
      uid: pod.metadata?.uid,
      resourceVersion: pod.metadata?.resourceVersion,
      deletionTimestamp: pod.metadata?.deletionTimestamp,
      labels: client ? { [LABEL_CLIENT]: client } : undefined,
      annotations: revision ? { [ANNOTATION_REVISION]: revision } : undefined,
      ownerReferences: owner ? [owner] : undefined,
    },
    spec: {
      containers: serving && http ? [{ name: serving.name, ports: [http] }] : [],
      // The claims it mounts: a workspace in use is never deleted.
      volumes: pod.spec?.volumes
        ?.filter((v) => v.persistentVolumeClaim)
        .map((v) => ({ name: v.name, persistentVolumeClaim: v.persistentVolumeClaim })),
    },
    status: { phase: pod.status?.phase, podIP: pod.status?.podIP },
  };
}

/** Every fleet workspace claim, page by page, cut down like the Pods. */
export function listWorkspaces(kube: Kube): Promise<V1PersistentVolumeClaim[]> {
  return readAll((options) => kube.workspaces.list(options), { slim: slimWorkspace });
}

/**
 * Every object of one kind the selector (by default: the fleet's) matches, page by page, each
 * page retried on a transient failure and each item slimmed as it arrives.
 */
export async function readAll<T>(
  list: (options: ListOptions) => Promise<Page<T>>,
  { labelSelector = MANAGED_SELECTOR, slim = (item: T) => item } = {},
): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const options = { labelSelector, limit: PAGE_SIZE, continue: token };
    const page = await retryTransient(() => list(options));
    for (const item of page.items) items.push(slim(item));
    token = page.continue;
  } while (token);
  return items;
}

function slimWorkspace(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const client = claim.metadata?.labels?.[LABEL_CLIENT];
  const lastUsed = claim.metadata?.annotations?.[ANNOTATION_LAST_USED];
  return {
    metadata: {
      name: claim.metadata?.name,
      uid: claim.metadata?.uid,
      resourceVersion: claim.metadata?.resourceVersion,
      creationTimestamp: claim.metadata?.creationTimestamp,
      deletionTimestamp: claim.metadata?.deletionTimestamp,
      labels: client ? { [LABEL_CLIENT]: client } : undefined,
      annotations: lastUsed ? { [ANNOTATION_LAST_USED]: lastUsed } : undefined,
    },
  };
}
