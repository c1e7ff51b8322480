/** How many instances one replica remembers; the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;
/** How long a hint lives after it was last written: an instance not served since is forgotten. */
const HINT_TTL_MS = 10 * 60_000;

interface Hint {
  /** When it was last written (epoch ms). */
  at: number;
  /** The instance's Pod name when it is not the instance's own (a pool member's). */
  podName?: string;
  /** The latest activity this replica wrote or read for it. */
  lastActivity?: Date;
}

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
    return this.get(name)?.lastActivity;
  }

  notePodName(name: string, podName: string): void {
    const hint = this.get(name);
    if (podName === name && hint?.podName === undefined) return;
    this.set(name, { ...hint, podName: podName === name ? undefined : podName });
  }

  noteActivity(name: string, at: Date): void {
    const hint = this.get(name);
    if (hint?.lastActivity && hint.lastActivity >= at) return;
    this.set(name, { ...hint, lastActivity: at });
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
  private set(name: string, fields: Omit<Hint, "at">): void {
    const hint = { ...fields, at: this.clock() };
    this.hints.delete(name);
    if (this.hints.size >= MAX_REMEMBERED) {
      const oldest = this.hints.keys().next().value;
      if (oldest !== undefined) this.hints.delete(oldest);
    }
    this.hints.set(name, hint);
  }
}
