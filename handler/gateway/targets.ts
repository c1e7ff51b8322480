import type { V1Pod } from "@kubernetes/client-node";
import { podNameOf } from "../../shared/instance/parts.js";
import { type InstanceRecord, recordFromPod } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";

/**
 * How long a looked-up instance is reused. A Pod's IP, port and owner (hence its token) are
 * fixed for its life; what can change is whether it still runs, and a moment-old answer
 * there is what a request a moment earlier got: a Pod gone since answers "refused" (and is
 * forgotten), one replaced since has a new token its gptme-server checks itself.
 */
export const TARGET_TTL_MS = 1_000;
/** Bounds the cache's memory whatever names clients try. */
const MAX_TARGETS = 10_000;

/** An instance's Pod as the gateway sees it: where to send traffic and whose token to check. */
export interface Target {
  pod: V1Pod;
  /** Undefined when the Pod lacks the fleet's mirror (not the gateway's to serve). */
  record: InstanceRecord | undefined;
}

/** The Pods behind gateway requests, each read at most once per TTL per replica. */
export class Targets {
  private readonly cache = new Map<string, { target: Target | undefined; readAt: number }>();
  private readonly pending = new Map<string, Promise<Target | undefined>>();
  /** Instance name to the name of the pool member's Pod it adopted (fixed for its ClientPod's life). */
  private readonly adopted = new Map<string, string>();

  constructor(
    private readonly kube: Kube,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The instance's Pod, from the cache or one read of the API server's watch cache;
   * `fresh` skips the cache (when a cached answer would turn a request away).
   */
  async get(
    name: string,
    { fresh = false } = {},
  ): Promise<{ target: Target | undefined; cached: boolean }> {
    const cached = this.cache.get(name);
    if (!fresh && cached && this.now() - cached.readAt < TARGET_TTL_MS) {
      return { target: cached.target, cached: true };
    }
    // Concurrent requests for one instance share one read.
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.read(name).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return { target: await pending, cached: false };
  }

  /**
   * An instance's Pod by the instance's name (a preview host names the instance, while a Pod
   * adopted from the warm pool keeps its member's name, which `get` and `forget` know it
   * by). The adopted name is read from the ClientPod once and kept while its Pod is found.
   */
  async ofInstance(
    name: string,
    { fresh = false } = {},
  ): Promise<{ target: Target | undefined; cached: boolean }> {
    const adopted = this.adopted.get(name);
    if (adopted) {
      const found = await this.get(adopted, { fresh });
      if (found.target) return found;
      this.adopted.delete(name);
    }
    const own = await this.get(name, { fresh });
    if (own.target) return own;
    const clientPod = await this.kube.clientPods.get(name);
    const podName = clientPod ? podNameOf(clientPod) : name;
    if (podName === name) return own;
    if (this.adopted.size >= MAX_TARGETS) this.adopted.clear();
    this.adopted.set(name, podName);
    return this.get(podName, { fresh });
  }

  /** Drops what is known of an instance: it refused a connection, or was deleted here. */
  forget(name: string): void {
    this.cache.delete(name);
  }

  /** Keeps a newer state of an instance's Pod than the API server's cache may hold yet. */
  remember(name: string, pod: V1Pod): void {
    this.store(name, { pod, record: recordFromPod(pod) });
  }

  private async read(name: string): Promise<Target | undefined> {
    const pod = await this.kube.pods.get(name, { fromCache: true });
    const target = pod && { pod, record: recordFromPod(pod) };
    this.store(name, target);
    return target;
  }

  private store(name: string, target: Target | undefined): void {
    this.cache.delete(name);
    if (this.cache.size >= MAX_TARGETS) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(name, { target, readAt: this.now() });
  }
}
