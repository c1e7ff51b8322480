import type { V1Pod } from "@kubernetes/client-node";
import { instanceByPodName } from "../../shared/actions/instances.js";
import { ownerUidOf } from "../../shared/instance/pod-status.js";
import { recordFromPod, recordOf } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import { podViewOf, type Target } from "./target.js";

/**
 * How long a looked-up instance is reused. A Pod's IP, port and owner (hence its token) are
 * fixed for its life; what can change is whether it still runs, and a moment-old answer
 * there is what a request a moment earlier got: a Pod gone since answers "refused" (and is
 * forgotten), one replaced since has a new token its gptme-server checks itself.
 */
export const TARGET_TTL_MS = 1_000;
/** How long a name that names no instance is remembered (a request for it reads nothing). */
export const MISS_TTL_MS = 1_000;
/** An instance no request has named for this long is dropped. */
export const IDLE_MS = 60_000;
/** Bounds on what one replica remembers, whatever names clients try: misses apart, so they never push real instances out. */
const MAX_TARGETS = 10_000;
const MAX_MISSES = 10_000;

/** What a request learns of a name. */
export interface Lookup {
  /** Undefined: no instance has this name. */
  target: Target | undefined;
  /** When it was read (epoch ms). */
  readAt: number;
  /** Read before this request (from the cache), not for it. */
  cached: boolean;
}

interface Found {
  target: Target;
  readAt: number;
}

/**
 * What a later read of an instance needs of an earlier one: its Pod's name (to read the Pod
 * alone) and its record (whose uid tells whether the Pod is still the instance's, and which
 * stands in for a Pod without a mirror). Not the Pod nor the token: they are read again.
 */
type Known = Pick<Target, "podName" | "record">;

interface KnownAt {
  known: Known;
  readAt: number;
}

/**
 * The instances gateway and preview requests name, each read at most once per TTL per
 * replica, by name from the API server's cache (never a LIST, never a quorum read), kept as
 * small records. A name met for the first time is looked up by its instance (its ClientPod,
 * or a pool member's alias: one read, so a name that names nothing costs one read, then
 * nothing for `MISS_TTL_MS`), then its Pod; after that the Pod alone is read again, whose
 * mirror carries the instance.
 *
 * A lookup is kept whole (its Pod, its token) for its TTL only; past it, only what the next
 * read needs (`Known`, a fifth of the size) until the name has not been used for `IDLE_MS`:
 * a replica that has served many instances in the last minute keeps little of each.
 */
export class Targets {
  /** Lookups younger than the TTL, whole; read order. */
  private readonly fresh = new Map<string, Found>();
  /** Older lookups, what the next read needs; read order. */
  private readonly known = new Map<string, KnownAt>();
  private readonly missing = new Map<string, number>();
  private readonly pending = new Map<string, Promise<Lookup>>();

  constructor(
    private readonly kube: Kube,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The instance a request names (a Pod's name, as gateway paths carry, or an instance's, as
   * preview hosts do), from the cache or read; `fresh` reads in any case.
   */
  get(name: string, { fresh = false } = {}): Promise<Lookup> | Lookup {
    if (!fresh) {
      const cached = this.cached(name);
      if (cached) return cached;
      const missedAt = this.missing.get(name);
      if (missedAt !== undefined && this.now() - missedAt < MISS_TTL_MS) {
        return { target: undefined, readAt: missedAt, cached: true };
      }
    }
    // Concurrent requests for one name share one read.
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.read(name, this.knownOf(name)).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return pending;
  }

  /** What is known of a name without reading (undefined when a request would read). */
  cached(name: string): Lookup | undefined {
    const found = this.fresh.get(name);
    if (found && this.now() - found.readAt < TARGET_TTL_MS) {
      return { target: found.target, readAt: found.readAt, cached: true };
    }
    return undefined;
  }

  /** Drops what is known of a name (its Pod refused a connection). */
  forget(name: string): void {
    this.fresh.delete(name);
    this.known.delete(name);
    this.missing.delete(name);
  }

  /** Drops an instance under every name it is known by (it was deleted here). */
  forgetInstance(name: string): void {
    this.forget(name);
    for (const [key, { target }] of this.fresh) {
      if (target.record.name === name) this.fresh.delete(key);
    }
    for (const [key, { known }] of this.known) {
      if (known.record.name === name) this.known.delete(key);
    }
  }

  /** Keeps a newer state of a name's Pod than the API server's cache may hold yet. */
  remember(name: string, pod: V1Pod): void {
    const known = this.knownOf(name);
    const record = recordFromPod(pod) ?? known?.record;
    if (!record) return;
    const podName = pod.metadata?.name ?? known?.podName ?? name;
    this.store(name, { podName, record, pod: podViewOf(pod) });
  }

  /** How many names are remembered (instances, misses). */
  get size(): { found: number; missing: number } {
    return { found: this.fresh.size + this.known.size, missing: this.missing.size };
  }

  private knownOf(name: string): Known | undefined {
    return this.fresh.get(name)?.target ?? this.known.get(name)?.known;
  }

  private async read(name: string, known: Known | undefined): Promise<Lookup> {
    const target = await this.readTarget(name, known);
    if (target) this.store(name, target);
    else this.storeMiss(name);
    return { target, readAt: this.now(), cached: false };
  }

  private async readTarget(name: string, known: Known | undefined): Promise<Target | undefined> {
    const { pods } = this.kube;
    if (known) {
      // The Pod alone: its mirror carries the instance, as long as it is still the instance's.
      const pod = await pods.get(known.podName, { fromCache: true });
      if (pod && ownerUidOf(pod) === known.record.uid) {
        return {
          podName: known.podName,
          record: recordFromPod(pod) ?? known.record,
          pod: podViewOf(pod),
        };
      }
    }
    // Its instance first: a name that names none costs this one read.
    const clientPod = await instanceByPodName(this.kube, name);
    if (!clientPod) return undefined;
    const record = recordOf(clientPod);
    const pod = await pods.get(record.podName, { fromCache: true });
    return { podName: record.podName, record, pod: pod && podViewOf(pod) };
  }

  private store(name: string, target: Target): void {
    const now = this.now();
    this.missing.delete(name);
    this.known.delete(name);
    // Insertion order is read order: the oldest reads come first, to expire or to evict.
    this.fresh.delete(name);
    this.fresh.set(name, { target, readAt: now });
    for (const [key, { target: old, readAt }] of this.fresh) {
      if (this.fresh.size <= MAX_TARGETS && now - readAt < TARGET_TTL_MS) break;
      this.fresh.delete(key);
      this.known.set(key, { known: { podName: old.podName, record: old.record }, readAt });
    }
    for (const [key, { readAt }] of this.known) {
      if (this.fresh.size + this.known.size <= MAX_TARGETS && now - readAt < IDLE_MS) break;
      this.known.delete(key);
    }
  }

  private storeMiss(name: string): void {
    const now = this.now();
    this.fresh.delete(name);
    this.known.delete(name);
    this.missing.delete(name);
    this.missing.set(name, now);
    for (const [key, readAt] of this.missing) {
      if (this.missing.size <= MAX_MISSES && now - readAt < MISS_TTL_MS) break;
      this.missing.delete(key);
    }
  }
}
