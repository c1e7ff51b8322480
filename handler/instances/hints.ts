/** How many instances one replica remembers; the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;
/** How long a hint lives after it was last written: an instance not served since is forgotten. */
const HINT_TTL_MS = 10 * 60_000;

/**
 * One instance's hints, always made by `hintOf` with the same fields in the same order: built
 * by spreading, each of 10,000 hints had a hidden class of its own (a 400-byte hint).
 */
interface Hint {
  /** When it was last written (epoch ms). */
  at: number;
  /** The instance's Pod name when it is not the instance's own (a pool member's). */
  podName: string | undefined;
  /** The latest activity this replica wrote or read for it (epoch ms). */
  lastActivity: number | undefined;
}

const hintOf = (at: number, podName?: string, lastActivity?: number): Hint => ({
  at,
  podName,
  lastActivity,
});

/**
 * What this replica remembers of instances it served: small, bounded, expiring, and only
 * hints: every use is checked against what a request reads, so a stale hint costs a read,
 * never a wrong answer. Two facts, each saving work at any fleet size: the Pod name of an instance made
 * from a pool member (fixed for its ClientPod's life), so its warm request reads that Pod by
 * name at once; and the last activity known, since the Pod's mirror is not rewritten for
 * activity alone.
 */
export class InstanceHints {
  private readonly hints = new Map<string, Hint>();

  constructor(private readonly clock: () => number = Date.now) {}

  podNameOf(name: string): string {
    return this.get(name)?.podName ?? name;
  }

  lastActivityOf(name: string): Date | undefined {
    const at = this.get(name)?.lastActivity;
    return at === undefined ? undefined : new Date(at);
  }

  notePodName(name: string, podName: string): void {
    const hint = this.get(name);
    if (podName === name && hint?.podName === undefined) return;
    this.set(name, podName === name ? undefined : podName, hint?.lastActivity);
  }

  noteActivity(name: string, at: Date): void {
    const hint = this.get(name);
    if (hint?.lastActivity !== undefined && hint.lastActivity >= at.getTime()) return;
    this.set(name, hint?.podName, at.getTime());
  }

  forget(name: string): void {
    this.hints.delete(name);
  }

  get size(): number {
    return this.hints.size;
  }

  private get(name: string): Hint | undefined {
    const hint = this.hints.get(name);
    if (hint && this.clock() - hint.at > HINT_TTL_MS) {
      this.hints.delete(name);
      return undefined;
    }
    return hint;
  }

  /** Re-inserts, so the map's order is least recently written first. */
  private set(name: string, podName: string | undefined, lastActivity: number | undefined): void {
    const hint = hintOf(this.clock(), podName, lastActivity);
    this.hints.delete(name);
    if (this.hints.size >= MAX_REMEMBERED) {
      const oldest = this.hints.keys().next().value;
      if (oldest !== undefined) this.hints.delete(oldest);
    }
    this.hints.set(name, hint);
  }
}
