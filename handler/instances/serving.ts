import type { V1Pod } from "@kubernetes/client-node";
import { hasPodEnded } from "../../shared/instance/pod-status.js";
import { ANNOTATION_PHASE } from "../../shared/instance/record.js";
import {
  ANNOTATION_SERVING_SINCE,
  answersHealth,
  healthUrlOf,
  isServing,
  SERVING_PHASE,
  servingAnnotations,
} from "../../shared/instance/serving.js";
import type { Kube } from "../../shared/kube/client.js";

/** How often a starting gptme-server is asked; each ask is one loopback-cheap HTTP GET. */
export const SERVING_POLL_MS = 100;
/** A health answer slower than this counts as none (the next ask follows at once). */
const ASK_TIMEOUT_MS = 1_000;
/**
 * Sightings are remembered this long: Pod reads from the API server's cache show the
 * recorded sighting within moments; until they do, this replica knows it from here.
 */
export const SEEN_TTL_MS = 60_000;
/** Bounds the sightings remembered at once, whatever the fleet's size. */
const MAX_REMEMBERED = 10_000;

/** A sighting this replica recorded: the annotation's value, and the Pod's IP then. */
interface Sighting {
  since: string;
  podIP: string | undefined;
  at: number;
}

export interface ServingDeps {
  kube: Kube;
  now?: () => Date;
  /** Ends every wait early (the process is shutting down). */
  shutdown?: AbortSignal;
  /** How a gptme-server is asked (tests may count the asks). */
  ask?: (url: string, timeoutMs: number) => Promise<boolean>;
  pollMs?: number;
}

/** One Pod's poller, shared by every request of this replica waiting for it. */
interface Poller {
  /** The latest the poller will ask until; extended by later waiters. */
  deadline: number;
  /** The Pod as last known; settles when it serves, ends, goes, or the deadline passes. */
  done: Promise<V1Pod | undefined>;
  /** The Pod as the poller last read it: what a waiter whose deadline comes first is given. */
  latest: V1Pod;
  /** Waiters that will write the phase on the instance's ClientPod once the Pod serves. */
  phaseWriters: number;
  /** The sighting's write carries the phase: its phase writers wait for it, deadline or not. */
  phaseRecorded: boolean;
}

/** What a waiter will do with the answer. */
export interface WaitOptions {
  /**
   * Writes the phase of a serving Pod (Running) on its ClientPod: the sighting then records
   * the same phase on the Pod's mirror in its one write (a new instance's first status,
   * Instances.repair), and no second write of the mirror is needed.
   */
  writesPhase?: boolean;
}

/**
 * Tells when an instance's gptme-server answers, by asking it at its Pod IP rather than
 * waiting for the kubelet's next readiness probe, and records the first answer on the Pod
 * (`gptme.ai/serving-since`) so that every later request, on any replica, reads "ready" from
 * the Pod alone. One poller per Pod per replica, however many requests wait: waiting costs
 * no API call per ask, and at most one watch (a Pod without an IP yet) and one write.
 */
export class ServingProbes {
  private readonly pollers = new Map<string, Poller>();
  /** Pods this replica saw serving (by uid): a few strings each, not the Pod. */
  private readonly seen = new Map<string, Sighting>();
  private readonly now: () => Date;
  private readonly ask: (url: string, timeoutMs: number) => Promise<boolean>;
  private readonly pollMs: number;

  constructor(private readonly deps: ServingDeps) {
    this.now = deps.now ?? (() => new Date());
    this.ask = deps.ask ?? answersHealth;
    this.pollMs = deps.pollMs ?? SERVING_POLL_MS;
  }

  /**
   * The Pod once its gptme-server has answered (`isServing` holds), or, when `deadline`
   * (epoch ms) passes first, the Pod as last known (undefined: it was deleted). Ended and
   * terminating Pods are returned at once: they will not answer.
   */
  async waitUntilServing(
    pod: V1Pod,
    deadline: number,
    { writesPhase = false }: WaitOptions = {},
  ): Promise<V1Pod | undefined> {
    const uid = pod.metadata?.uid;
    if (!uid || isServing(pod) || hasPodEnded(pod) || pod.metadata?.deletionTimestamp) return pod;
    const seen = this.seen.get(uid);
    if (seen && Date.now() - seen.at < SEEN_TTL_MS) return withSighting(pod, seen);
    if (deadline <= Date.now() || this.deps.shutdown?.aborted) return pod;
    let poller = this.pollers.get(uid);
    if (poller) poller.deadline = Math.max(poller.deadline, deadline);
    else {
      const started: Poller = {
        deadline,
        done: Promise.resolve(pod),
        latest: pod,
        phaseWriters: 0,
        phaseRecorded: false,
      };
      started.done = this.poll(pod, started).finally(() => this.pollers.delete(uid));
      this.pollers.set(uid, started);
      poller = started;
    }
    if (writesPhase) poller.phaseWriters++;
    return this.race(poller, deadline, writesPhase);
  }

  /** The pollers running now (one per starting Pod some request waits for). */
  get polling(): number {
    return this.pollers.size;
  }

  private async poll(pod: V1Pod, poller: Poller): Promise<V1Pod | undefined> {
    const { kube } = this.deps;
    const name = pod.metadata?.name ?? "";
    const uid = pod.metadata?.uid ?? "";
    let current: V1Pod | undefined = pod;
    // No IP yet: one watch until it has one (or ends, or goes).
    if (!healthUrlOf(pod)) {
      current = await kube.pods.waitFor(
        pod,
        (p) => Boolean(healthUrlOf(p)) || hasPodEnded(p),
        poller.deadline - Date.now(),
        this.deps.shutdown,
      );
      if (current) poller.latest = current;
    }
    const url = current && !hasPodEnded(current) ? healthUrlOf(current) : undefined;
    if (!current || !url || current.metadata?.uid !== uid) return current;
    while (Date.now() < poller.deadline && !this.deps.shutdown?.aborted) {
      const asked = Date.now();
      if (await this.ask(url, Math.min(ASK_TIMEOUT_MS, Math.max(1, poller.deadline - asked)))) {
        // The phase only when a waiter will write it on the ClientPod too: the mirror says
        // what the ClientPod records, and a phase only the mirror had would never reach it.
        poller.phaseRecorded = poller.phaseWriters > 0;
        const annotations = servingAnnotations(this.now());
        if (poller.phaseRecorded) annotations[ANNOTATION_PHASE] = SERVING_PHASE;
        const recorded = await kube.pods.patchIfSame(name, uid, { metadata: { annotations } });
        if (recorded) this.remember(uid, recorded);
        return recorded;
      }
      await sleep(Math.max(0, this.pollMs - (Date.now() - asked)));
    }
    return current;
  }

  private remember(uid: string, pod: V1Pod): void {
    const since = pod.metadata?.annotations?.[ANNOTATION_SERVING_SINCE];
    if (since === undefined) return;
    const now = Date.now();
    this.seen.delete(uid);
    this.seen.set(uid, { since, podIP: pod.status?.podIP, at: now });
    // Oldest first: expired sightings go, and the oldest beyond the bound.
    for (const [key, { at }] of this.seen) {
      if (this.seen.size <= MAX_REMEMBERED && now - at < SEEN_TTL_MS) break;
      this.seen.delete(key);
    }
  }

  /**
   * The poller's answer, or at this waiter's own deadline (or on shutdown) the Pod as the
   * poller last read it: one that got its IP meanwhile is answered with its address.
   */
  private race(poller: Poller, deadline: number, writesPhase: boolean): Promise<V1Pod | undefined> {
    const { done } = poller;
    return new Promise((resolve) => {
      const { shutdown } = this.deps;
      const settle = (value: V1Pod | undefined) => {
        clearTimeout(timer);
        shutdown?.removeEventListener("abort", onAbort);
        resolve(value);
      };
      const giveUp = () => {
        // A phase writer whose phase the sighting's write carries already waits for that
        // write (moments): leaving now, it would record the phase before it on its ClientPod.
        if (writesPhase && poller.phaseRecorded) return;
        if (writesPhase) poller.phaseWriters--;
        settle(poller.latest);
      };
      const onAbort = giveUp;
      const timer = setTimeout(giveUp, Math.max(0, deadline - Date.now()));
      shutdown?.addEventListener("abort", onAbort);
      done.then(settle, () => settle(poller.latest));
    });
  }
}

/** The Pod as read, with the sighting this replica recorded on it (a read may predate it). */
function withSighting(pod: V1Pod, { since, podIP }: Sighting): V1Pod {
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...pod.metadata?.annotations, [ANNOTATION_SERVING_SINCE]: since },
    },
    status: { ...pod.status, podIP: pod.status?.podIP ?? podIP },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
