import type { V1Pod } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { startMember } from "../../shared/actions/pool-members.js";
import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import { type Plan, planRecordOf } from "../../shared/config/plans.js";
import {
  ANNOTATION_TOKEN_KEY,
  type ClientPod,
  clientPodManifest,
} from "../../shared/instance/clientpod.js";
import {
  ANNOTATION_POOL_MEMBER,
  ANNOTATION_TOKEN_SUBJECT,
  LABEL_POD,
} from "../../shared/instance/parts.js";
import { ownerUidOf } from "../../shared/instance/pod-status.js";
import { mirrorAnnotations } from "../../shared/instance/record.js";
import { isServing } from "../../shared/instance/serving.js";
import type { Kube } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import { aliasedWorkspaceOf } from "../../shared/pool/alias.js";
import { adoptionPatch } from "../../shared/pool/member.js";
import { claimOrder, countOf } from "../../shared/pool/member-index.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { enforceLimits } from "../instances/limits.js";
import type { Claim, PoolClaims, PoolWanted } from "../instances/pool-claims.js";
import { createRefused } from "../instances/refusals.js";
import type { ServingProbes } from "../instances/serving.js";
import type { Templates } from "../instances/templates.js";
import { MemberIndexView } from "./member-index-view.js";
import { RecentNames } from "./recent-names.js";
import { settleClaim } from "./settle.js";

/** What happens to the pool, by plan (each plan has its own). */
export interface PoolEvents {
  claimed(plan: string): void;
  missed(plan: string): void;
  refilled(plan: string): void;
  members(plan: string, count: number): void;
}

export interface PoolDeps {
  kube: Kube;
  config: HandlerConfig;
  keyring: TokenKeyring;
  serving: ServingProbes;
  /** The PodTemplates, as the instances read them (at most once per 2 s). */
  templates: Templates;
  now: () => Date;
  events: PoolEvents;
  log: Logger;
}

/** Replacements one replica starts at once, and how many may wait (the reaper tops up the rest). */
const REFILL_CONCURRENCY = 2;
const MAX_REFILL_BACKLOG = 50;
/**
 * Claims' follow-ups one replica runs at once, and how many may wait: a burst of claims
 * answers first, its follow-ups (five writes each) come after, rather than queue in the API
 * server beside the next claims' answers. Past the backlog, the reaper's pass completes them.
 */
const SETTLE_CONCURRENCY = 4;
const MAX_SETTLE_BACKLOG = 1_000;
/** How many members one claim tries before it starts the instance cold. */
const MAX_TRIES = 3;
/** How long a member seen taken is skipped: until its claim's follow-up unlists it, and more. */
const TAKEN_TTL_MS = 30_000;
const MAX_TAKEN = 10_000;
/** How long a refill waits for its member's server, to record it answering (claims prefer those). */
const REFILL_SERVING_WAIT_MS = 120_000;
/**
 * How long a claim's replacement waits before it starts: the claimed instance's first
 * exchanges (a web UI loads several at once) go first, since starting a member is heavy work
 * for a node (seconds of CPU for a new gptme-server). Measured on the real node: started at
 * once, it slowed the first gateway answers of the instance just claimed.
 */
export const REFILL_AFTER_CLAIM_MS = 3_000;

/**
 * The warm pool's request side: claims a member for a new instance (three writes: the
 * instance's ClientPod, its slot, then the adoption of the member's Pod), and finishes the
 * claim and starts a replacement in the background. The reaper keeps the pool at POOL_SIZE
 * whatever happens here.
 */
export class WarmPool implements PoolClaims {
  /** Replacements in flight on this replica: background work never crowds out requests. */
  private readonly refills = pLimit(REFILL_CONCURRENCY);
  /** Claims' follow-ups in flight on this replica, likewise. */
  private readonly followUps = pLimit(SETTLE_CONCURRENCY);
  /** Replacements waiting to start (cleared on close). */
  private readonly delayed = new Set<NodeJS.Timeout>();
  /** Members this replica claimed or found claimed a moment ago: never tried again. */
  private readonly taken = new RecentNames(TAKEN_TTL_MS, MAX_TAKEN);
  /** The pool's index, read once a second and written in batches by this replica. */
  private readonly index: MemberIndexView;

  constructor(private readonly deps: PoolDeps) {
    this.index = new MemberIndexView(deps.kube, undefined, () => deps.now().getTime());
  }

  /**
   * Makes the instance (client, instance id) from a pool member, or says why it must start
   * cold: it has a kept workspace (which only a new Pod can mount), the pool is empty,
   * every member tried was taken by another claim, or the instance exists already (made
   * before, or by another request a moment ago: its ClientPod is returned).
   */
  async claim(wanted: PoolWanted, keys: TokenKeys): Promise<Claim> {
    const { kube, config } = this.deps;
    const { plan } = wanted;
    // At once, by name from the API server's cache, at the same cost in any fleet: a
    // workspace the instance kept, and the index (this replica's read of the last second).
    // Whether the instance exists, the ClientPod's create says (409), at no extra read.
    const [kept, entries] = await Promise.all([
      config.workspaces ? keptWorkspaceOf(kube, wanted.name) : undefined,
      this.index.entries(),
    ]);
    if (kept) return { claimed: false, keptWorkspace: kept };
    // Only members of the client's plan (made from its template), and whose token key this
    // replica knows: the instance's token is theirs; none this replica saw taken a moment ago
    // (the index still lists them until their claim's follow-up lands).
    const members = claimOrder(entries, plan.name, (id) => keys.byId.has(id)).filter(
      ({ name }) => !this.taken.has(name),
    );
    this.deps.events.members(plan.name, members.length);
    if (members.length === 0) {
      this.deps.events.missed(plan.name);
      this.refillInBackground(plan);
      return { claimed: false };
    }

    let clientPod: ClientPod | undefined;
    for (const { name: memberName, entry } of members.slice(0, MAX_TRIES)) {
      const memberUid = entry.uid;
      const annotations = {
        [ANNOTATION_TOKEN_KEY]: entry.tokenKeyId,
        [ANNOTATION_POOL_MEMBER]: memberName,
        [ANNOTATION_TOKEN_SUBJECT]: memberUid,
      };
      if (!clientPod) {
        // Write 1: the instance's ClientPod at its deterministic name, naming the member it
        // adopts. A 409: the instance exists (made before, or by another request a moment
        // ago): the caller goes on from its ClientPod, read fresh.
        const manifest = clientPodManifest({
          clientId: wanted.clientId,
          instanceId: wanted.instanceId,
          name: wanted.name,
          podTemplate: plan.template,
          plan: planRecordOf(plan),
        });
        manifest.metadata.annotations = annotations;
        manifest.metadata.labels = { ...manifest.metadata.labels, [LABEL_POD]: memberName };
        const created = await kube.clientPods.create(manifest).catch(createRefused);
        if (!created.created)
          return { claimed: false, existing: await kube.clientPods.get(wanted.name) };
        clientPod = created.object;
        // The member was counted against the fleet's cap already: only the client's is checked.
        await enforceLimits(kube, config, clientPod, plan, undefined);
      } else {
        // The member tried before was taken by another claim: name the next one instead.
        clientPod =
          (await kube.clientPods.patch(clientPod.metadata.name, {
            metadata: { annotations, labels: { [LABEL_POD]: memberName } },
          })) ?? clientPod;
      }
      const workspace = config.workspaces ? { name: memberName, state: "new" as const } : undefined;
      const instance: ClientPod = { ...clientPod, status: { ...clientPod.status, workspace } };
      // Write 2: adopt the member's Pod, only if it is still an unclaimed member.
      const adopted = await kube.pods.patchIf(
        memberName,
        adoptionPatch(memberUid, instance, mirrorAnnotations(instance)),
      );
      this.taken.add(memberName);
      if (adopted) {
        this.deps.events.claimed(plan.name);
        this.settleInBackground(instance, memberName, memberUid, adopted);
        this.refillInBackground(plan, REFILL_AFTER_CLAIM_MS);
        return { claimed: true, clientPod: instance, pod: adopted };
      }
      // Claimed by another request, or gone: its entry is stale.
      void this.index.change(memberName, null).catch(() => undefined);
    }
    // Every member tried was taken: start this instance cold, without a member's names.
    this.deps.events.missed(plan.name);
    if (clientPod) {
      await kube.clientPods.delete(clientPod.metadata.name, { uid: clientPod.metadata.uid });
    }
    return { claimed: false };
  }

  /**
   * Starts one member of a plan's pool in the background (a claim's replacement, or after a
   * miss), after `delayMs`.
   */
  refillInBackground(plan: Plan, delayMs = 0): void {
    // Past a backlog, leave the rest to the reaper's pass rather than queue without bound.
    if (this.refills.pendingCount + this.delayed.size >= MAX_REFILL_BACKLOG) return;
    const start = () =>
      void this.refills(() => this.refill(plan)).catch((error: unknown) =>
        this.deps.log.warn({ err: { message: (error as Error).message } }, "pool: refill failed"),
      );
    if (delayMs <= 0) {
      start();
      return;
    }
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      start();
    }, delayMs);
    timer.unref();
    this.delayed.add(timer);
  }

  /** A claim's follow-up (settleClaim), after those before it. */
  private settleInBackground(
    instance: ClientPod,
    memberName: string,
    memberUid: string,
    pod: V1Pod,
  ): void {
    if (this.followUps.pendingCount >= MAX_SETTLE_BACKLOG) {
      this.deps.log.warn(
        { instance: instance.metadata.name },
        "pool: too many claims' follow-ups waiting; the reaper's pass completes this one",
      );
      return;
    }
    const deps = { ...this.deps, index: this.index };
    void this.followUps(() => settleClaim(deps, instance, memberName, memberUid, pod));
  }

  /** Drops the replacements not started yet (the reaper's pass tops the pool up). */
  close(): void {
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
  }

  private async refill(plan: Plan): Promise<void> {
    const { kube, config, keyring, serving, templates, now } = this.deps;
    // Every claim and every miss, on every replica, asks for one: once the pool holds
    // POOL_SIZE members another would be surplus (seen on the real node: a burst of misses
    // started a member each, past what the node could run).
    // The index, not a label query: the reaper's pass counts the members themselves and
    // tops the pool up if stale entries made this count too high.
    if (countOf(await this.index.entries(), plan.name) >= plan.poolSize) return;
    const template = await templates.of(plan.template);
    const keys = await keyring.keys();
    const pod = await startMember(
      kube,
      template,
      keys.current,
      { plan, resources: config, workspaces: config.workspaces },
      now(),
    );
    if (!pod) return;
    this.deps.events.refilled(plan.name);
    // Record its first answer, so that a claim hands it out ready at once.
    const served = await serving.waitUntilServing(pod, Date.now() + REFILL_SERVING_WAIT_MS);
    const uid = ownerUidOf(pod);
    if (served && isServing(served) && uid) {
      await this.index.change(pod.metadata?.name ?? "", {
        uid,
        tokenKeyId: keys.current.id,
        serving: true,
        plan: plan.name,
      });
    }
  }
}

/**
 * The kept workspace of an instance about to be made: the one of its own name, else the one
 * a claimed member left it (its alias); both read by name from the API server's cache.
 */
async function keptWorkspaceOf(kube: Kube, name: string): Promise<string | undefined> {
  const [own, alias] = await Promise.all([
    kube.workspaces.get(name, { fromCache: true }),
    kube.configMaps.get(name, { fromCache: true }),
  ]);
  if (own && !own.metadata?.deletionTimestamp) return name;
  return aliasedWorkspaceOf(alias);
}
