import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import {
  ANNOTATION_TOKEN_KEY,
  type ClientPod,
  LABEL_CLIENT,
  LABEL_INSTANCE,
  LABEL_PLAN,
  MANAGED_SELECTOR,
} from "../shared/instance/clientpod.js";
import { HTTP_PORT_NAME } from "../shared/instance/pod-spec.js";
import { ANNOTATION_REVISION } from "../shared/instance/revision.js";
import { ANNOTATION_SERVING_SINCE } from "../shared/instance/serving.js";
import { ANNOTATION_LAST_USED } from "../shared/instance/workspace.js";
import { isExpiredList, type Kube, type ListOptions, type Page } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import { ANNOTATION_POOL_TEMPLATE, LABEL_POOL } from "../shared/pool/member.js";
import { retryTransient } from "./retry.js";

// What the reaper reads of the fleet: lists in pages, each item cut down to the fields its
// plan needs as it arrives, so that a pass holds a few pages, never the fleet.

/** Objects per list call: the fleet is read in pages, never in one response. */
export const PAGE_SIZE = 500;

/**
 * How often one listing may start again after its `continue` token expired (410 Gone): each
 * restart reads on from where it stopped, so more than a few means the API server compacts
 * faster than a page can be read, and the pass had better end and report it.
 */
export const MAX_RESTARTS = 5;

export interface PagesOptions<T> {
  /** Default: every object the fleet made. */
  labelSelector?: string;
  slim?: (item: T) => T;
  pageSize?: number;
  /** Told when the listing starts again after an expired `continue` token. */
  log?: Logger;
  what?: string;
}

/**
 * One kind of object, page by page in name order, each item slimmed as it arrives. The next
 * page is asked for while the caller works on this one. Each page is retried on a transient
 * failure; an expired `continue` token (410 Gone: the API server compacted past the list's
 * snapshot, as it does every few minutes) does not end the listing: it reads on from the
 * latest state after the last name read, with the token the API server offers for that, or
 * from the start, skipping what was read, if it offers none.
 */
export async function* pages<T extends { metadata?: { name?: string } }>(
  list: (options: ListOptions) => Promise<Page<T>>,
  {
    labelSelector = MANAGED_SELECTOR,
    slim = (item: T) => item,
    pageSize = PAGE_SIZE,
    log,
    what = "objects",
  }: PagesOptions<T> = {},
): AsyncGenerator<T[]> {
  let restarts = 0;
  /** The last name handed out: a restart from the start skips up to it. */
  let after: string | undefined;
  const read = async (token: string | undefined): Promise<Page<T>> => {
    let next = token;
    for (;;) {
      try {
        const options = { labelSelector, limit: pageSize, continue: next };
        return await retryTransient(() => list(options));
      } catch (error) {
        if (!isExpiredList(error) || next === undefined || restarts >= MAX_RESTARTS) throw error;
        restarts++;
        next = error.continueToken;
        log?.warn(
          { what, after: after ?? null, restarts, resumed: next !== undefined },
          "the list's continue token expired: reading on from the latest state",
        );
      }
    }
  };
  let pending = read(undefined);
  for (;;) {
    const page = await pending;
    if (page.continue) {
      pending = read(page.continue);
      // Handled when awaited; a caller that stops early must not leave an unhandled rejection.
      pending.catch(() => undefined);
    }
    const items: T[] = [];
    for (const item of page.items) {
      const name = item.metadata?.name ?? "";
      if (after !== undefined && name <= after) continue;
      items.push(slim(item));
    }
    const last = items.at(-1)?.metadata?.name;
    if (last !== undefined) after = last;
    yield items;
    if (!page.continue) return;
  }
}

/** Every fleet ClientPod, page by page (ClientPods are small: kept whole). */
export function clientPodPages(
  kube: Kube,
  options: Omit<PagesOptions<ClientPod>, "slim"> = {},
): AsyncGenerator<ClientPod[]> {
  const { log } = options;
  return pages(
    async (query) => {
      const page = await kube.clientPods.list(query);
      for (const name of page.invalid)
        log?.warn({ name }, "skipping a ClientPod that does not match the schema");
      return page;
    },
    { what: "clientpods", ...options },
  );
}

/** Every fleet Pod (or those `labelSelector` picks), page by page, slimmed. */
export function podPages(
  kube: Kube,
  options: Omit<PagesOptions<V1Pod>, "slim"> = {},
): AsyncGenerator<V1Pod[]> {
  return pages((query) => kube.pods.list(query), { what: "pods", slim: slimPod, ...options });
}

/** Every fleet workspace claim, page by page, slimmed. */
export function workspacePages(
  kube: Kube,
  options: Omit<PagesOptions<V1PersistentVolumeClaim>, "slim"> = {},
): AsyncGenerator<V1PersistentVolumeClaim[]> {
  return pages((query) => kube.workspaces.list(query), {
    what: "persistentvolumeclaims",
    slim: slimWorkspace,
    ...options,
  });
}

/** Every item of a listing whose size does not grow with the fleet (the pool's members). */
export async function readAll<T extends { metadata?: { name?: string } }>(
  listing: AsyncIterable<T[]>,
): Promise<T[]> {
  const items: T[] = [];
  for await (const page of listing) items.push(...page);
  return items;
}

const KEPT_LABELS = [LABEL_CLIENT, LABEL_INSTANCE, LABEL_POOL, LABEL_PLAN];
// The token key too: the pool pass writes it into the index when it sees a member answering,
// and a claim skips an entry whose key it does not know (an empty one, without it).
const KEPT_ANNOTATIONS = [
  ANNOTATION_REVISION,
  ANNOTATION_SERVING_SINCE,
  ANNOTATION_POOL_TEMPLATE,
  ANNOTATION_TOKEN_KEY,
];

function pick(
  from: Record<string, string> | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (!from) return undefined;
  const picked: Record<string, string> = {};
  let any = false;
  for (const key of keys) {
    const value = from[key];
    if (value === undefined) continue;
    picked[key] = value;
    any = true;
  }
  return any ? picked : undefined;
}

/**
 * A Pod cut down to what the plans read: identity and preconditions, owner, the labels and
 * annotations of the fleet's bookkeeping, the probe's target (pod IP, the `http` port), the
 * claims it mounts, phase and readiness.
 */
export function slimPod(pod: V1Pod): V1Pod {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller);
  const serving = pod.spec?.containers.find((c) => c.ports?.some((p) => p.name === HTTP_PORT_NAME));
  const http = serving?.ports?.find((p) => p.name === HTTP_PORT_NAME);
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  return {
    metadata: {
      name: pod.metadata?.name,
      uid: pod.metadata?.uid,
      resourceVersion: pod.metadata?.resourceVersion,
      deletionTimestamp: pod.metadata?.deletionTimestamp,
      labels: pick(pod.metadata?.labels, KEPT_LABELS),
      annotations: pick(pod.metadata?.annotations, KEPT_ANNOTATIONS),
      ownerReferences: owner ? [owner] : undefined,
    },
    spec: {
      containers: serving && http ? [{ name: serving.name, ports: [http] }] : [],
      // The claims it mounts: a workspace in use is never deleted.
      volumes: pod.spec?.volumes
        ?.filter((v) => v.persistentVolumeClaim)
        .map((v) => ({ name: v.name, persistentVolumeClaim: v.persistentVolumeClaim })),
    },
    status: {
      phase: pod.status?.phase,
      podIP: pod.status?.podIP,
      conditions: ready ? [ready] : undefined,
    },
  };
}

export function slimWorkspace(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: claim.metadata?.name,
      uid: claim.metadata?.uid,
      resourceVersion: claim.metadata?.resourceVersion,
      creationTimestamp: claim.metadata?.creationTimestamp,
      deletionTimestamp: claim.metadata?.deletionTimestamp,
      labels: pick(claim.metadata?.labels, [LABEL_CLIENT]),
      annotations: pick(claim.metadata?.annotations, [ANNOTATION_LAST_USED]),
    },
  };
}

/**
 * A listing whose first page has been read before this returns: a listing started after it
 * reads a later snapshot of the fleet than its own (a paged list is one snapshot: that of its
 * first page).
 */
export async function startedFirst<T>(listing: AsyncGenerator<T[]>): Promise<AsyncIterable<T[]>> {
  const first = await listing.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* listing;
  })();
}
