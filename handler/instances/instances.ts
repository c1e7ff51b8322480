import type { V1Pod } from "@kubernetes/client-node";
import { deleteInstance, instanceByPodName } from "../../shared/actions/instances.js";
import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import { currentTemplateOf, type Plan, planRecordOf } from "../../shared/config/plans.js";
import {
  type ClientPod,
  clientSelector,
  LABEL_CLIENT,
  LABEL_INSTANCE,
} from "../../shared/instance/clientpod.js";
import { instanceNameOf } from "../../shared/instance/names.js";
import { partsOf, podNameOf } from "../../shared/instance/parts.js";
import { ownerNameOf, ownerUidOf } from "../../shared/instance/pod-status.js";
import {
  type InstanceRecord,
  isMirrorCurrent,
  mirrorAnnotations,
  mirrorLabels,
  recordFromPod,
  recordOf,
} from "../../shared/instance/record.js";
import { activityStatus, isActivityDue, isPhaseStale } from "../../shared/instance/status.js";
import type { Kube } from "../../shared/kube/client.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { endpointOf, type InstanceBody, instanceBody } from "./body.js";
import { findOrCreateClientPod, planPatch, templateOf, type WantedInstance } from "./create.js";
import { InstanceHints } from "./hints.js";
import { isRepairTouchDue, warmStepOf } from "./next-step.js";
import type { PoolClaims } from "./pool-claims.js";
import { restorePod } from "./restore.js";
import type { ServingProbes } from "./serving.js";
import { endWorkspace, fitWorkspace, type WorkspaceEnd } from "./workspace.js";

/** What happens to instances, by plan (`none`: an instance from before plans). */
export interface InstanceEvents {
  created(plan: string): void;
  replaced(plan: string): void;
  deleted(plan: string): void;
}

/** Who asks for an instance: the client, and the plan its instances get now. */
export interface Requester {
  clientId: string;
  plan: Plan;
}

export interface InstanceDeps {
  kube: Kube;
  config: HandlerConfig;
  now: () => Date;
  events: InstanceEvents;
  keyring: TokenKeyring;
  /** Asks starting gptme-servers whether they answer (shared with the gateway). */
  serving: ServingProbes;
  /** Hands out started instances for new ones; undefined with POOL_SIZE=0. */
  pool?: PoolClaims;
  /** Told of the Pod name of every instance deleted here (the gateway forgets it at once). */
  onRemoved?: (name: string) => void;
  /** Aborted when the process shuts down: readiness waits end early so draining is quick. */
  shutdown?: AbortSignal;
}

/** An instance's plan as its metrics name it: `none` for one from before plans. */
export const planLabelOf = (clientPod: ClientPod | undefined): string =>
  clientPod?.spec.plan ?? "none";

/** What a delete did: the instance, and its workspace (null: it had none). */
export interface Removal {
  deleted: boolean;
  workspace: WorkspaceEnd;
}

/**
 * Finds, creates, repairs and deletes instances. There is no controller: each call reads
 * the truth from the API server and moves it one step toward "a ready Pod for this
 * instance", so an interrupted call is finished by the next one, on any replica.
 */
export class Instances {
  /** What this replica remembers of instances it served (pool members' Pod names, activity). */
  private readonly hints = new InstanceHints();
  private readonly knownActivity = (name: string) => this.hints.lastActivityOf(name);

  constructor(private readonly deps: InstanceDeps) {}

  /**
   * The instance of (client, instance id), created or repaired as needed, after waiting up
   * to `waitMs` for its Pod to be Ready. A running instance costs one read, plus the
   * throttled activity write.
   */
  async ensure(
    { clientId, plan }: Requester,
    instanceId: string,
    waitMs: number,
  ): Promise<InstanceBody> {
    const name = instanceNameOf(clientId, instanceId);
    const deadline = Date.now() + waitMs;
    const keys = await this.deps.keyring.keys();
    const pod = await this.readPod(name, clientId, instanceId);
    const { now, config } = this.deps;
    const step = warmStepOf(pod, now(), config.activityIntervalMs, this.knownActivity);
    if (pod && step.kind !== "repair" && step.record.plan !== plan.name) {
      // The client's plan changed (or the instance is from before plans): recorded now, on
      // the ClientPod and the Pod's mirror; the rollout moves it to the plan's template.
      const moved = await this.movePlan(pod, plan);
      if (moved) {
        const { clientPod, pod: mirrored } = moved;
        return this.body(
          recordOf(clientPod),
          await this.waitReady(mirrored, deadline),
          false,
          keys,
        );
      }
      // No ClientPod, or a newer one than the Pod's owner: repair below.
    } else if (pod && step.kind === "answer") {
      return this.body(step.record, await this.waitReady(pod, deadline), false, keys);
    }
    if (pod && step.kind === "record-activity") {
      const touched = await this.recordActivity(pod);
      if (touched) {
        const { clientPod, pod: mirrored } = touched;
        return this.body(
          recordOf(clientPod),
          await this.waitReady(mirrored, deadline),
          false,
          keys,
        );
      }
      // No ClientPod, or a newer one than the Pod's owner: the Pod is stale; repair below.
    }
    return this.repair({ clientId, instanceId, name, keys, plan }, pod, deadline);
  }

  /**
   * Records a running instance's new plan: its ClientPod's plan, idle timeout and lifetime
   * (and label), the Pod's mirror of them, and a workspace at least the plan's size. Its Pod
   * runs on as it is; when the plan's template gives another revision, the reaper's rollout
   * replaces it once idle (token, endpoint and workspace stay). Undefined when the ClientPod
   * is gone or is not the Pod's owner.
   */
  private async movePlan(
    pod: V1Pod,
    plan: Plan,
  ): Promise<{ clientPod: ClientPod; pod: V1Pod | undefined } | undefined> {
    const { kube } = this.deps;
    const record = recordFromPod(pod);
    const name = record?.name ?? ownerNameOf(pod) ?? "";
    const clientPod = await this.recordPlan(name, plan);
    if (!clientPod || ownerUidOf(pod) !== clientPod.metadata.uid) return undefined;
    const mirrored = await kube.pods.patch(pod.metadata?.name ?? "", {
      metadata: { labels: mirrorLabels(clientPod), annotations: mirrorAnnotations(clientPod) },
    });
    return { clientPod, pod: mirrored };
  }

  /** Writes a plan on an instance's ClientPod and fits its workspace to it; undefined when gone. */
  private async recordPlan(name: string, plan: Plan): Promise<ClientPod | undefined> {
    const { kube, config } = this.deps;
    const clientPod = await kube.clientPods.patch(name, planPatch(planRecordOf(plan)));
    if (clientPod?.status?.workspace && config.workspaces) {
      await fitWorkspace(kube, clientPod.status.workspace.name, plan.workspaceSize);
    }
    return clientPod;
  }

  /**
   * The instance's Pod, read by name from the API server's cache: a running instance is the
   * common case and the cheapest read, at the same cost in any fleet (a label query walks
   * every Pod of the namespace); a stale "missing" only sends the request down the repair
   * path, which reads fresh. A Pod of that name that is not this instance's (a pool member's
   * name this replica remembers from an earlier instance) counts as none.
   */
  private async readPod(
    name: string,
    clientId: string,
    instanceId: string,
  ): Promise<V1Pod | undefined> {
    const pod = await this.deps.kube.pods.get(this.hints.podNameOf(name), { fromCache: true });
    const labels = pod?.metadata?.labels;
    const own = labels?.[LABEL_CLIENT] === clientId && labels?.[LABEL_INSTANCE] === instanceId;
    return own ? pod : undefined;
  }

  /**
   * Writes activity for a running instance on its ClientPod, the truth the reaper reads,
   * unless another replica wrote it within the interval (the ClientPod from the API server's
   * cache says so): one write per instance per ACTIVITY_INTERVAL however many replicas serve
   * it. The Pod's mirror is rewritten only when something besides activity changed (every
   * Pod write wakes its watchers, the kubelet's included). Undefined when the ClientPod is
   * gone, or is not the Pod's owner (the Pod is stale and a request will repair it). With
   * `activity` false, records what is known of the Pod (its phase) alone.
   */
  async recordActivity(
    pod: V1Pod,
    { activity = true }: { activity?: boolean } = {},
  ): Promise<{ clientPod: ClientPod; pod: V1Pod | undefined } | undefined> {
    const { kube, now, config } = this.deps;
    const record = recordFromPod(pod);
    const name = record?.name ?? ownerNameOf(pod) ?? pod.metadata?.name ?? "";
    // A phase to record is a write whatever other replicas did: no need to look first.
    if (activity && !(record && isPhaseStale(record, pod))) {
      const cached = await kube.clientPods.get(name, { fromCache: true });
      if (!cached || ownerUidOf(pod) !== cached.metadata.uid) return undefined;
      const written = recordOf(cached);
      if (
        !isActivityDue(written, now(), config.activityIntervalMs) &&
        !isPhaseStale(written, pod)
      ) {
        this.hints.noteActivity(name, written.lastActivity ?? written.createdAt);
        return { clientPod: cached, pod };
      }
    }
    const clientPod = await this.touch(name, pod, record, activity);
    if (!clientPod || ownerUidOf(pod) !== clientPod.metadata.uid) return undefined;
    const written = recordOf(clientPod);
    this.hints.noteActivity(name, written.lastActivity ?? written.createdAt);
    if (isMirrorCurrent(pod, clientPod)) return { clientPod, pod };
    const mirrored = await kube.pods.patch(pod.metadata?.name ?? "", {
      metadata: { labels: mirrorLabels(clientPod), annotations: mirrorAnnotations(clientPod) },
    });
    return { clientPod, pod: mirrored };
  }

  /** The caller's instances, each joined with its Pod: two list calls. */
  async list(clientId: string): Promise<InstanceBody[]> {
    const { kube } = this.deps;
    const selector = clientSelector(clientId);
    const keys = await this.deps.keyring.keys();
    const [clientPods, pods] = await Promise.all([
      kube.clientPods.list({ labelSelector: selector }),
      kube.pods.list({ labelSelector: selector }),
    ]);
    const podByName = new Map(pods.items.map((p) => [ownerNameOf(p) ?? p.metadata?.name, p]));
    return clientPods.items.map((cp) =>
      this.body(recordOf(cp), podByName.get(cp.metadata.name), false, keys, cp),
    );
  }

  /**
   * Deletes an instance by name. Its workspace stays, marked as used now, unless `purge`,
   * which deletes it too, with or without an instance (Kubernetes keeps a claim a Pod still
   * mounts until that Pod is gone). Undefined when there was nothing to delete.
   */
  async remove(name: string, { purge = false } = {}): Promise<Removal | undefined> {
    const { kube } = this.deps;
    // Its Pod and claim may be named after the pool member it was made from.
    const clientPod = await kube.clientPods.get(name);
    const parts = clientPod ? partsOf(clientPod) : { pod: name, workspace: name };
    const deleted = (await deleteInstance(kube, name, undefined, parts.pod)) === "deleted";
    this.deps.onRemoved?.(parts.pod);
    this.hints.forget(name);
    if (deleted) this.deps.events.deleted(planLabelOf(clientPod));
    const workspace = await endWorkspace(
      kube,
      parts.workspace,
      { deleted, purge },
      this.deps.now(),
    );
    return deleted || workspace === "purged" ? { deleted, workspace } : undefined;
  }

  /**
   * The slow path: a new instance, a ClientPod whose Pod is missing, ended or stale (a crash
   * between two writes, a pod deleted behind our back). Each step tolerates another replica
   * doing the same step at the same time.
   */
  private async repair(
    wanted: WantedInstance,
    pod: V1Pod | undefined,
    deadline: number,
  ): Promise<InstanceBody> {
    const { config, kube } = this.deps;
    const { name, keys, plan } = wanted;
    // No Pod where the warm read looked: its ClientPod says whether the instance exists, and
    // where its Pod is when that has a pool member's name (remembered from now on).
    let existing: ClientPod | undefined;
    if (!pod) {
      existing = await kube.clientPods.get(name, { fromCache: true });
      const podName = existing && podNameOf(existing);
      if (podName) this.hints.notePodName(name, podName);
      if (podName && podName !== name) pod = await kube.pods.get(podName, { fromCache: true });
    }
    let keptWorkspace: string | undefined;
    // A plan without a pool (poolSize 0) starts cold at once, as with the pool off.
    if (!pod && !existing && this.deps.pool && plan.poolSize > 0) {
      const claim = await this.deps.pool.claim(wanted, keys);
      if (claim.claimed) {
        const { clientPod } = claim;
        const ready = await this.waitReady(claim.pod, deadline);
        return this.body(recordOf(clientPod), ready, true, keys, clientPod);
      }
      keptWorkspace = claim.keptWorkspace;
    }
    // The plan's template first: when it is missing, nothing is created.
    const template = await templateOf(this.deps.kube, plan.template);
    let { clientPod, created } = await findOrCreateClientPod(this.deps, wanted, keptWorkspace);
    if (clientPod.metadata.deletionTimestamp)
      return this.body(recordOf(clientPod), pod, false, keys, clientPod);
    if (clientPod.spec.plan !== plan.name) {
      clientPod = (await this.recordPlan(name, plan)) ?? clientPod;
      if (pod && ownerUidOf(pod) === clientPod.metadata.uid) {
        pod =
          (await kube.pods.patch(pod.metadata?.name ?? "", {
            metadata: {
              labels: mirrorLabels(clientPod),
              annotations: mirrorAnnotations(clientPod),
            },
          })) ?? pod;
      }
    }
    if (
      isRepairTouchDue(
        clientPod,
        created,
        this.deps.now(),
        config.activityIntervalMs,
        this.knownActivity,
      )
    ) {
      // Only this ClientPod's own Pod says anything about its phase and IP.
      const ownPod = pod && ownerUidOf(pod) === clientPod.metadata.uid ? pod : undefined;
      clientPod = (await this.touch(name, ownPod, recordOf(clientPod))) ?? clientPod;
    }

    const restored = await restorePod(this.deps, clientPod, {
      created,
      pod,
      template,
      keys,
      deadline,
    });
    if (!restored.waited) {
      return this.body(recordOf(restored.clientPod), restored.pod, false, keys, restored.clientPod);
    }
    let current = await this.waitReady(restored.pod, deadline);
    clientPod = restored.clientPod;
    // The Pod moved on while this request waited (Pending to Running): record it now, so the
    // PHASE column follows and the next (warm) request finds nothing to write.
    if (current && isPhaseStale(recordOf(clientPod), current)) {
      // Its phase only: this request's activity is the one the cold path already wrote.
      const recorded = await this.recordActivity(current, { activity: false });
      if (recorded) {
        clientPod = recorded.clientPod;
        current = recorded.pod ?? current;
      }
    }
    return this.body(recordOf(clientPod), current, restored.created, keys, clientPod);
  }

  /**
   * Starts the Pod of an existing instance again when it is gone, ended or stale, and waits
   * until its gptme-server answers, until `deadline` (the gateway's heal: a client that only
   * talks through the gateway gets its instance back). Never creates an instance: undefined
   * when the ClientPod is gone or being deleted. `podName` is what the gateway path names
   * (the instance's, or the pool member's it adopted). Exactly once across replicas, as
   * `ensure`: the Pod's name is fixed, so a second replica's create finds the first's Pod.
   */
  async restart(podName: string, deadline: number): Promise<V1Pod | undefined> {
    const { kube } = this.deps;
    const clientPod = await instanceByPodName(kube, podName);
    if (!clientPod || clientPod.metadata.deletionTimestamp) return undefined;
    const [pod, template, keys] = await Promise.all([
      kube.pods.get(podNameOf(clientPod)),
      templateOf(kube, currentTemplateOf(clientPod.spec, this.deps.config.plans.current())),
      this.deps.keyring.keys(),
    ]);
    const restored = await restorePod(this.deps, clientPod, {
      created: false,
      pod,
      template,
      keys,
      deadline,
    });
    return restored.waited ? this.waitReady(restored.pod, deadline) : restored.pod;
  }

  /**
   * Writes activity (and what is known of the Pod, and the new expiry when the record is
   * known) on the ClientPod, or with `activity` false what is known of the Pod alone;
   * undefined when it is gone.
   */
  private async touch(
    name: string,
    pod: V1Pod | undefined,
    record: InstanceRecord | undefined,
    activity = true,
  ): Promise<ClientPod | undefined> {
    const now = this.deps.now();
    const touched = await this.deps.kube.clientPods.patchStatus(
      name,
      activity
        ? activityStatus(record, now, pod, this.deps.config)
        : { phase: pod?.status?.phase, podIP: pod?.status?.podIP },
    );
    if (touched && activity) this.hints.noteActivity(name, now);
    return touched;
  }

  /** Ready is when its gptme-server answers: asked directly, not the kubelet's next probe. */
  private async waitReady(pod: V1Pod | undefined, deadline: number): Promise<V1Pod | undefined> {
    if (!pod) return pod;
    return this.deps.serving.waitUntilServing(pod, deadline);
  }

  private body(
    record: InstanceRecord,
    pod: V1Pod | undefined,
    created: boolean,
    keys: TokenKeys,
    clientPod?: ClientPod,
  ): InstanceBody {
    const { config } = this.deps;
    const terminating = Boolean(clientPod?.metadata.deletionTimestamp);
    const endpoint = endpointOf(record, config.gateway.publicUrl, keys);
    return instanceBody(record, pod, created, config, endpoint, terminating);
  }
}
