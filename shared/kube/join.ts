// Two of the fleet's lists read side by side, page by page, matched by name: what lets a pass
// judge each instance with its Pod while holding only a few pages of either.
//
// The API server lists the objects of one namespace in the order of their keys, that is by
// name (a `continue` token is the last key read), so two lists can be walked like a merge
// join. Pods are named after their ClientPod (except those adopted from the warm pool, which
// keep their member's name: see plan.ts), so nearly every pair meets in the same batch.

interface Named {
  metadata?: { name?: string };
}

/** Names in both lists up to some bound: every name of one side with its namesake, if any. */
export interface JoinedBatch<L, R> {
  left: L[];
  right: R[];
}

/** A list that did not come in name order: joining it would pair the wrong objects. */
export class OutOfOrderError extends Error {
  override name = "OutOfOrderError";
}

const nameOf = (item: Named): string => item.metadata?.name ?? "";

/**
 * The two lists as batches in name order, each batch holding every item of both lists up to
 * a name that both lists have reached, so an item and its namesake always share a batch.
 * Reads a page of a side only when that side has nothing left to give; both sides' next
 * pages are asked for at once. Throws OutOfOrderError if a side's names do not rise.
 */
export async function* joinByName<L extends Named, R extends Named>(
  left: AsyncIterable<L[]>,
  right: AsyncIterable<R[]>,
): AsyncGenerator<JoinedBatch<L, R>> {
  const l = new Side(left, "left");
  const r = new Side(right, "right");
  for (;;) {
    await Promise.all([l.fill(), r.fill()]);
    if (l.exhausted && r.exhausted) return;
    // A side still reading vouches for every name up to the last it read; a finished one
    // for every name.
    const bound = [l, r]
      .filter((side) => !side.done)
      .map((side) => side.last ?? "")
      .reduce<string | undefined>((a, b) => (a === undefined || b < a ? b : a), undefined);
    yield { left: l.take(bound), right: r.take(bound) };
  }
}

class Side<T extends Named> {
  done = false;
  last: string | undefined;
  private buffer: T[] = [];
  private readonly pages: AsyncIterator<T[]>;

  constructor(
    pages: AsyncIterable<T[]>,
    private readonly what: string,
  ) {
    this.pages = pages[Symbol.asyncIterator]();
  }

  get exhausted(): boolean {
    return this.done && this.buffer.length === 0;
  }

  /** Reads pages until the side has items to give or none are left. */
  async fill(): Promise<void> {
    while (!this.done && this.buffer.length === 0) {
      const next = await this.pages.next();
      if (next.done) {
        this.done = true;
        return;
      }
      for (const item of next.value) {
        const name = nameOf(item);
        if (this.last !== undefined && name <= this.last) {
          throw new OutOfOrderError(
            `the ${this.what} list is not in name order (${name} after ${this.last})`,
          );
        }
        this.last = name;
        this.buffer.push(item);
      }
    }
  }

  /** The items up to `bound` (all of them without one), removed from the side. */
  take(bound: string | undefined): T[] {
    if (bound === undefined) return this.buffer.splice(0);
    let count = 0;
    while (count < this.buffer.length && nameOf(this.buffer[count] as T) <= bound) count++;
    return this.buffer.splice(0, count);
  }
}
