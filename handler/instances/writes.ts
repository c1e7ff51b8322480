import type { V1Pod } from "@kubernetes/client-node";
import type { HandlerConfig } from "../../shared/config/load.js";
import { type Plan, planRecordOf } from "../../shared/config/plans.js";
import type { ClientPod, ClientPodStatus } from "../../shared/instance/clientpod.js";
import { ownerNameOf, ownerUidOf } from "../../shared/instance/pod-status.js";
import {
  type InstanceRecord,
  isMirrorCurrent,
  mirrorAnnotations,
  mirrorLabels,
  recordFromPod,
  recordOf,
} from "../../shared/instance/record.js";
import { isServing, SERVING_PHASE } from "../../shared/instance/serving.js";
import { activityStatus, isActivityDue, isPhaseStale } from "../../shared/instance/status.js";
import type { Kube } from "../../shared/kube/client.js";
import { planPatch } from "./create.js";
import type { InstanceHints } from "./hints.js";
import { fitWorkspace } from "./workspace.js";

// What a request writes on an instance that exists: its activity and phase (the truth the
// reaper reads, on the ClientPod), its plan, and the Pod's mirror of them.

/** An instance's ClientPod as written, and its Pod (with its mirror rewritten if needed). */
export interface Written {
  clientPod: ClientPod;
  pod: V1Pod | undefined;
}

/** An instance's record and Pod after a phase its Pod moved to was recorded (clientPod: written). */
export interface PhaseRecorded {
  record: InstanceRecord;
  pod: V1Pod | undefined;
  clientPod?: ClientPod;
}

export class InstanceWrites {
  constructor(
    private readonly deps: { kube: Kube; config: HandlerConfig; now: () => Date },
    private readonly hints: InstanceHints,
  ) {}

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
  ): Promise<Written | undefined> {
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
    return { clientPod, pod: await this.writeMirror(pod, clientPod) };
  }

  /**
   * Records a running instance's new plan: its ClientPod's plan, idle timeout and lifetime
   * (and label), the Pod's mirror of them, and a workspace at least the plan's size. Its Pod
   * runs on as it is; when the plan's template gives another revision, the reaper's rollout
   * replaces it once idle (token, endpoint and workspace stay). Undefined when the ClientPod
   * is gone or is not the Pod's owner.
   */
  async movePlan(pod: V1Pod, plan: Plan): Promise<Written | undefined> {
    const record = recordFromPod(pod);
    const name = record?.name ?? ownerNameOf(pod) ?? "";
    const clientPod = await this.recordPlan(name, plan);
    if (!clientPod || ownerUidOf(pod) !== clientPod.metadata.uid) return undefined;
    return { clientPod, pod: await this.writeMirror(pod, clientPod) };
  }

  /** Writes a plan on an instance's ClientPod and fits its workspace to it; undefined when gone. */
  async recordPlan(name: string, plan: Plan): Promise<ClientPod | undefined> {
    const { kube, config } = this.deps;
    const clientPod = await kube.clientPods.patch(name, planPatch(planRecordOf(plan)));
    if (clientPod?.status?.workspace && config.workspaces) {
      await fitWorkspace(kube, clientPod.status.workspace.name, plan.workspaceSize);
    }
    return clientPod;
  }

  /**
   * Records a phase the Pod moved to since `record` was read (Pending to Running while a
   * request waited) on the ClientPod and the Pod's mirror, so the PHASE column follows and the
   * next request finds nothing to write. The phase only: activity is written apart.
   */
  async recordMovedPhase(record: InstanceRecord, pod: V1Pod | undefined): Promise<PhaseRecorded> {
    if (!pod || !isPhaseStale(record, pod)) return { record, pod };
    const recorded = await this.recordActivity(pod, { activity: false });
    if (!recorded) return { record, pod };
    const { clientPod } = recorded;
    return { record: recordOf(clientPod), pod: recorded.pod ?? pod, clientPod };
  }

  /**
   * Writes a new instance's first status (Started.firstStatus) with the phase its Pod reached:
   * Running once its server answered (the sighting wrote that on the Pod's mirror), else the
   * Pod's own; the mirror is rewritten only if it still differs. Undefined when it is gone.
   */
  async writeFirstStatus(
    name: string,
    status: ClientPodStatus,
    pod: V1Pod | undefined,
  ): Promise<Written | undefined> {
    const phase = pod && isServing(pod) ? SERVING_PHASE : (pod?.status?.phase ?? status.phase);
    const clientPod = await this.deps.kube.clientPods.patchStatus(name, {
      ...status,
      phase,
      podIP: pod?.status?.podIP,
    });
    if (!clientPod) return undefined;
    const written = recordOf(clientPod);
    this.hints.noteActivity(name, written.lastActivity ?? written.createdAt);
    if (!pod || ownerUidOf(pod) !== clientPod.metadata.uid || isMirrorCurrent(pod, clientPod)) {
      return { clientPod, pod };
    }
    return { clientPod, pod: await this.writeMirror(pod, clientPod) };
  }

  /** Rewrites the Pod's mirror of its ClientPod (labels and annotations); undefined when gone. */
  writeMirror(pod: V1Pod, clientPod: ClientPod): Promise<V1Pod | undefined> {
    return this.deps.kube.pods.patch(pod.metadata?.name ?? "", {
      metadata: { labels: mirrorLabels(clientPod), annotations: mirrorAnnotations(clientPod) },
    });
  }

  /**
   * Writes activity (and what is known of the Pod, and the new expiry when the record is
   * known) on the ClientPod, or with `activity` false what is known of the Pod alone;
   * undefined when it is gone.
   */
  async touch(
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
}
