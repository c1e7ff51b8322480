/**
 * Names seen within the last `ttlMs`, at most `max` of them: a small set that forgets by
 * itself (the oldest first), whatever names come by.
 */
export class RecentNames {
  /** Insertion order is age order: a name added again moves to the end. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(name: string): void {
    const now = this.now();
    this.seen.delete(name);
    this.seen.set(name, now);
    for (const [oldest, at] of this.seen) {
      if (this.seen.size <= this.max && now - at < this.ttlMs) break;
      this.seen.delete(oldest);
    }
  }

  has(name: string): boolean {
    const at = this.seen.get(name);
    return at !== undefined && this.now() - at < this.ttlMs;
  }

  get size(): number {
    return this.seen.size;
  }
}
