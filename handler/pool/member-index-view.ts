import { writeIndexChanges } from "../../shared/actions/pool-members.js";
import type { Kube } from "../../shared/kube/client.js";
import { entriesOf, type IndexEntry, POOL_INDEX_NAME } from "../../shared/pool/member-index.js";

/** How long one read of the pool's index serves this replica's claims and refills. */
export const INDEX_TTL_MS = 1_000;
/** How long this replica gathers its changes to the index into one write. */
export const INDEX_GATHER_MS = 100;

/**
 * The pool's index as this replica sees it: one read serves every claim for INDEX_TTL_MS
 * (at 50 new clients a second, tens of them), and the entries it adds and removes are
 * written together, one merge patch per INDEX_GATHER_MS. The index is a hint either way: a
 * member another replica took since the read costs a claim one failed try (the adoption's
 * test-and-set decides), a member indexed since waits for the next read.
 */
export class MemberIndexView {
  private read: { at: number; entries: Promise<ReadonlyMap<string, IndexEntry>> } | undefined;
  private changes = new Map<string, IndexEntry | null>();
  private written: Promise<void> | undefined;

  constructor(
    private readonly kube: Kube,
    private readonly options: { ttlMs: number; gatherMs: number } = {
      ttlMs: INDEX_TTL_MS,
      gatherMs: INDEX_GATHER_MS,
    },
    private readonly now: () => number = Date.now,
  ) {}

  /** The entries, read by name from the API server's cache at most once per TTL. */
  entries(): Promise<ReadonlyMap<string, IndexEntry>> {
    const now = this.now();
    if (!this.read || now - this.read.at >= this.options.ttlMs) {
      const entries = this.kube.configMaps
        .get(POOL_INDEX_NAME, { fromCache: true })
        .then((index) => entriesOf(index));
      const read = { at: now, entries };
      this.read = read;
      // A failed read is not kept: the next claim reads again.
      entries.catch(() => {
        if (this.read === read) this.read = undefined;
      });
    }
    return this.read.entries;
  }

  /**
   * Adds or replaces a member's entry, or takes it out (null), with this replica's other
   * changes of the next INDEX_GATHER_MS; settles once they are written.
   */
  change(name: string, entry: IndexEntry | null): Promise<void> {
    this.changes.set(name, entry);
    this.written ??= new Promise<void>((resolve) =>
      setTimeout(resolve, this.options.gatherMs),
    ).then(() => {
      const changes = this.changes;
      this.changes = new Map();
      this.written = undefined;
      return writeIndexChanges(this.kube, changes);
    });
    return this.written;
  }
}
