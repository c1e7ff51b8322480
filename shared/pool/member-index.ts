import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  type ClientPod,
  DEFAULT_PLAN,
  LABEL_KIND,
  LABEL_MANAGED_BY,
  MANAGED_BY,
} from "../instance/clientpod.js";

// Where a claim finds the pool's members: one ConfigMap listing them, a key per member. A
// claim reads it by name from the API server's cache, at the same cost in any fleet (a label
// query for members walks every Pod of the namespace). Entries are added and removed with
// merge patches of their own key, which never conflict; the index is a hint, never the
// truth: the adoption's test-and-set on the member's Pod decides, and a claim that finds an
// entry stale (claimed, gone) removes it.

export const POOL_INDEX_NAME = "fleet-pool-members";
export const POOL_INDEX_KIND = "pool-index";

/** What a claim needs of a member before it reads anything else. */
export interface IndexEntry {
  /** The member ClientPod's uid: the instance's token is derived from it. */
  uid: string;
  /** The token key its token is derived from: a replica that does not know it skips it. */
  tokenKeyId: string;
  /** Whether its gptme-server has answered: claimed, it is ready at once. */
  serving: boolean;
  /** The plan it was made for (its template): only that plan's clients claim it. */
  plan: string;
}

export function poolIndexManifest(): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: POOL_INDEX_NAME,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_KIND]: POOL_INDEX_KIND },
    },
    data: {},
  };
}

/** The merge patch that adds (or replaces) members' entries, or removes them (null). */
export function indexPatch(changes: ReadonlyMap<string, IndexEntry | null>): object {
  const data: Record<string, string | null> = {};
  for (const [name, entry] of changes) data[name] = entry === null ? null : JSON.stringify(entry);
  return { data };
}

/** How many entries are of one plan: its pool's members as the index knows them. */
export const countOf = (entries: ReadonlyMap<string, IndexEntry>, plan: string): number =>
  [...entries.values()].filter((entry) => entry.plan === plan).length;

/** The index's entries; unreadable ones are left out. */
export function entriesOf(index: V1ConfigMap | undefined): Map<string, IndexEntry> {
  const entries = new Map<string, IndexEntry>();
  for (const [name, text] of Object.entries(index?.data ?? {})) {
    const entry = parseEntry(text);
    if (entry) entries.set(name, entry);
  }
  return entries;
}

/**
 * The members a claim tries, best first: those of the client's plan whose key this replica
 * knows, the serving ones first (ready at once), in random order within each group, so that
 * replicas claiming at the same moment rarely pick the same one.
 */
export function claimOrder(
  entries: ReadonlyMap<string, IndexEntry>,
  plan: string,
  knownKey: (id: string) => boolean,
  random: () => number = Math.random,
): { name: string; entry: IndexEntry }[] {
  return [...entries]
    .filter(([, entry]) => entry.plan === plan && knownKey(entry.tokenKeyId))
    .map(([name, entry]) => ({ name, entry, key: (entry.serving ? 0 : 1) + random() }))
    .sort((a, b) => a.key - b.key)
    .map(({ name, entry }) => ({ name, entry }));
}

function parseEntry(text: string): IndexEntry | undefined {
  try {
    const value = JSON.parse(text) as Partial<IndexEntry>;
    if (typeof value.uid !== "string" || typeof value.tokenKeyId !== "string") return undefined;
    // Members from before plans were made from POD_TEMPLATE: the plan of that name's.
    const plan = typeof value.plan === "string" ? value.plan : DEFAULT_PLAN;
    return { uid: value.uid, tokenKeyId: value.tokenKeyId, serving: value.serving === true, plan };
  } catch {
    return undefined;
  }
}

/**
 * Entries of the pool's index that name no member a listing found (by name and uid): members
 * removed without their entry (a claim's follow-up that failed, a member deleted by hand), or
 * made since the list was read: read each again before dropping its entry.
 */
export function unlistedEntries(
  entries: ReadonlyMap<string, { uid: string }>,
  members: readonly ClientPod[],
): string[] {
  const listed = new Set(members.map((cp) => `${cp.metadata.name}/${cp.metadata.uid}`));
  return [...entries]
    .filter(([name, entry]) => !listed.has(`${name}/${entry.uid}`))
    .map(([name]) => name);
}
