import type { V1Pod } from "@kubernetes/client-node";
import { instanceByPodName, instancesOfClient } from "../../shared/actions/instances.js";
import { currentTemplateOf } from "../../shared/config/plans.js";
import { type ClientPod, LABEL_CLIENT, LABEL_INSTANCE } from "../../shared/instance/clientpod.js";
import { instanceNameOf } from "../../shared/instance/names.js";
import { podNameOf } from "../../shared/instance/parts.js";
import { ownerUidOf } from "../../shared/instance/pod-status.js";
import { type InstanceRecord, recordOf } from "../../shared/instance/record.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { endpointOf, type InstanceBody, instanceBody } from "./body.js";
import { findOrCreateClientPod, type WantedInstance } from "./create.js";
import type { InstanceDeps, Requester } from "./deps.js";
import { FleetCap } from "./fleet-cap.js";
import { InstanceHints } from "./hints.js";
import { isRepairTouchDue, warmStepOf } from "./next-step.js";
import { type Removal, removeInstance } from "./removal.js";
import { restorePod } from "./restore.js";
import type { WaitOptions } from "./serving.js";
import { InstanceWrites, type PhaseRecorded, type Written } from "./writes.js";

/**
 * Finds, creates, repairs and deletes instances. There is no controller: each call reads
 * the truth from the API server and moves it one step toward "a ready Pod for this
 * instance", so an interrupted call is finished by the next one, on any replica.
 */
export class Instances {
  /** What this replica remembers of instances it served (pool members' Pod names, activity). */
  private readonly hints = new InstanceHints();
  private readonly knownActivity = (name: string) => this.hints.lastActivityOf(name);
  private readonly writes: InstanceWrites;
  private readonly fleetCap: FleetCap;

  constructor(private readonly deps: InstanceDeps) {
    this.writes = new InstanceWrites(deps, this.hints);
    this.fleetCap = new FleetCap(deps.kube, deps.config.maxInstances);
  }

  /** Records a running instance's activity (the gateway's traffic): see InstanceWrites. */
  recordActivity(pod: V1Pod): Promise<Written | undefined> {
    return this.writes.recordActivity(pod);
  }

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
      const moved = await this.writes.movePlan(pod, plan);
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
      const waited = await this.waitAndRecordPhase(step.record, pod, deadline);
      return this.body(waited.record, waited.pod, false, keys);
    }
    if (pod && step.kind === "record-activity") {
      const touched = await this.writes.recordActivity(pod);
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

  /** The caller's instances, each joined with its Pod, by name (instancesOfClient). */
  async list(clientId: string): Promise<InstanceBody[]> {
    const { kube, config } = this.deps;
    const limits = config.plans.current().all.map((plan) => plan.maxInstancesPerClient);
    const [keys, instances] = await Promise.all([
      this.deps.keyring.keys(),
      instancesOfClient(kube, clientId, limits),
    ]);
    return instances.map(({ clientPod, pod }) =>
      this.body(recordOf(clientPod), pod, false, keys, clientPod),
    );
  }

  /** Deletes an instance by name: see removeInstance. */
  remove(name: string, options: { purge?: boolean } = {}): Promise<Removal | undefined> {
    return removeInstance(this.deps, name, options, () => this.hints.forget(name));
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
    const { config } = this.deps;
    const { name, keys, plan } = wanted;
    // No Pod where the warm read looked. Where a claim may make the instance, the claim's
    // create says whether it exists (409), and returns its ClientPod, read fresh: where its
    // Pod is when that has a pool member's name (remembered from now on). Elsewhere the
    // create below says it. A plan without a pool (poolSize 0) starts cold at once.
    let existing: ClientPod | undefined;
    let keptWorkspace: string | undefined;
    const pool = plan.poolSize > 0 ? this.deps.pool : undefined;
    if (!pod && pool) {
      const claim = await pool.claim(wanted, keys);
      if (claim.claimed) {
        const { clientPod } = claim;
        const ready = await this.waitReady(claim.pod, deadline);
        return this.body(recordOf(clientPod), ready, true, keys, clientPod);
      }
      ({ existing, keptWorkspace } = claim);
      if (existing) pod = await this.podOfExisting(existing);
    }
    // The plan's template first: when it is missing, nothing is created.
    const template = await this.deps.templates.of(plan.template);
    let { clientPod, created } = existing
      ? { clientPod: existing, created: false }
      : await findOrCreateClientPod(
          { ...this.deps, fleetCap: this.fleetCap },
          wanted,
          keptWorkspace,
        );
    if (!pod && !created && !existing) pod = await this.podOfExisting(clientPod);
    if (clientPod.metadata.deletionTimestamp)
      return this.body(recordOf(clientPod), pod, false, keys, clientPod);
    if (clientPod.spec.plan !== plan.name) {
      clientPod = (await this.writes.recordPlan(name, plan)) ?? clientPod;
      if (pod && ownerUidOf(pod) === clientPod.metadata.uid) {
        pod = (await this.writes.writeMirror(pod, clientPod)) ?? pod;
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
      clientPod = (await this.writes.touch(name, ownPod, recordOf(clientPod))) ?? clientPod;
    }

    const restored = await restorePod(this.deps, clientPod, {
      created,
      pod,
      template,
      keys,
      deadline,
      firstStatusLater: true,
    });
    if (!restored.waited) {
      return this.body(recordOf(restored.clientPod), restored.pod, false, keys, restored.clientPod);
    }
    const { firstStatus } = restored;
    clientPod = restored.clientPod;
    let current: V1Pod | undefined;
    if (firstStatus) {
      // A new instance's first status, once: with the phase its Pod reached while this
      // request waited, which the Pod's mirror says already when its server answered.
      current = await this.waitReady(restored.pod, deadline, { writesPhase: true });
      const written = await this.writes.writeFirstStatus(name, firstStatus, current);
      if (written) {
        clientPod = written.clientPod;
        current = written.pod;
      }
    } else {
      const waited = await this.waitAndRecordPhase(recordOf(clientPod), restored.pod, deadline);
      clientPod = waited.clientPod ?? clientPod;
      current = waited.pod;
    }
    return this.body(recordOf(clientPod), current, restored.created, keys, clientPod);
  }

  /**
   * The Pod of an instance found without one where the warm read looked: read only when it
   * has another name (a pool member's), which is remembered from now on.
   */
  private async podOfExisting(clientPod: ClientPod): Promise<V1Pod | undefined> {
    const podName = podNameOf(clientPod);
    this.hints.notePodName(clientPod.metadata.name, podName);
    if (podName === clientPod.metadata.name) return undefined;
    return this.deps.kube.pods.get(podName, { fromCache: true });
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
      this.deps.templates.of(currentTemplateOf(clientPod.spec, this.deps.config.plans.current())),
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
   * Waits until the Pod serves (or the deadline), then records a phase it moved to meanwhile
   * (InstanceWrites.recordMovedPhase).
   */
  private async waitAndRecordPhase(
    record: InstanceRecord,
    pod: V1Pod | undefined,
    deadline: number,
  ): Promise<PhaseRecorded> {
    return this.writes.recordMovedPhase(record, await this.waitReady(pod, deadline));
  }

  /** Ready is when its gptme-server answers: asked directly, not the kubelet's next probe. */
  private async waitReady(
    pod: V1Pod | undefined,
    deadline: number,
    options?: WaitOptions,
  ): Promise<V1Pod | undefined> {
    if (!pod) return pod;
    return this.deps.serving.waitUntilServing(pod, deadline, options);
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
