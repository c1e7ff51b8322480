/** How many instances one replica remembers; the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;

interface Hint {
  /** The instance's Pod name when it is not the instance's own (a pool member's). */
  podName?: string;
  /** The latest activity this replica wrote or read for it. */
  lastActivity?: Date;
}

/**
 * What this replica remembers of instances it served: small, bounded, and only hints: every
 * use is checked against what a request reads, so a stale hint costs a read, never a wrong
 * answer. Two facts, each saving work at any fleet size: the Pod name of an instance made
 * from a pool member (fixed for its ClientPod's life), so its warm request reads that Pod by
 * name at once; and the last activity known, since the Pod's mirror is not rewritten for
 * activity alone.
 */
export class InstanceHints {
  private readonly hints = new Map<string, Hint>();

  podNameOf(name: string): string {
    return this.hints.get(name)?.podName ?? name;
  }

  lastActivityOf(name: string): Date | undefined {
    return this.hints.get(name)?.lastActivity;
  }

  notePodName(name: string, podName: string): void {
    if (podName === name) {
      const hint = this.hints.get(name);
      if (hint?.podName !== undefined) this.set(name, { ...hint, podName: undefined });
      return;
    }
    this.set(name, { ...this.hints.get(name), podName });
  }

  noteActivity(name: string, at: Date): void {
    const hint = this.hints.get(name);
    if (hint?.lastActivity && hint.lastActivity >= at) return;
    this.set(name, { ...hint, lastActivity: at });
  }

  forget(name: string): void {
    this.hints.delete(name);
  }

  get size(): number {
    return this.hints.size;
  }

  /** Re-inserts, so the map's order is least recently written first. */
  private set(name: string, hint: Hint): void {
    this.hints.delete(name);
    if (this.hints.size >= MAX_REMEMBERED) {
      const oldest = this.hints.keys().next().value;
      if (oldest !== undefined) this.hints.delete(oldest);
    }
    this.hints.set(name, hint);
  }
}
