import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import { type HandlerConfig, revisionSettingsOf } from "../../shared/config/load.js";
import {
  type ClientPod,
  type ClientPodStatus,
  clientPodSchema,
} from "../../shared/instance/clientpod.js";
import { podNameOf } from "../../shared/instance/parts.js";
import { buildPod } from "../../shared/instance/pod-spec.js";
import { mirrorAnnotations, recordOf } from "../../shared/instance/record.js";
import { ANNOTATION_REVISION, revisionOf } from "../../shared/instance/revision.js";
import { activityStatus } from "../../shared/instance/status.js";
import type { Kube } from "../../shared/kube/client.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { tokenOf } from "../../shared/tokens/instance-token.js";
import { tokenEnv, tokenSecret } from "../../shared/tokens/secret.js";
import { podRefused } from "./refusals.js";
import { ensureWorkspace } from "./workspace.js";

export interface StartDeps {
  kube: Kube;
  config: HandlerConfig;
  now: () => Date;
  shutdown?: AbortSignal;
}

export interface Started {
  /** The ClientPod, with the status this step wrote. */
  clientPod: ClientPod;
  /**
   * A new instance's first status, not written yet (`firstStatusLater`): its Pod's mirror
   * says it already; the caller writes it once, with the phase its Pod reached.
   */
  firstStatus?: ClientPodStatus;
  /** Undefined when the Pod must wait (its workspace claim is still being deleted). */
  pod: V1Pod | undefined;
  /** Whether this call created the Pod (false: another replica did, a moment ago). */
  created: boolean;
}

/**
 * Starts the Pod of a ClientPod that has none, in two rounds of writes: the workspace claim
 * (made, or found and marked used) and the token's Secret; then the status (a new instance's
 * first, or the workspace it now has) and the Pod that mounts and reads them. Every step
 * tolerates another replica doing the same at the same time.
 */
export async function startPod(
  deps: StartDeps,
  clientPod: ClientPod,
  template: V1PodTemplate,
  keys: TokenKeys,
  {
    isNew,
    deadline,
    firstStatusLater = false,
  }: { isNew: boolean; deadline: number; firstStatusLater?: boolean },
): Promise<Started> {
  const { kube, config } = deps;
  const { name } = clientPod.metadata;
  // The workspace claim and the token's Secret need only the ClientPod: made at once. The
  // Secret's 409 means it exists, with this very token (its name carries the ClientPod's uid,
  // its content is derived from it).
  const token = tokenOf(recordOf(clientPod), keys);
  // The workspace its plan gives (an instance from before plans: the default plan's size).
  const plans = config.plans.current();
  const plan =
    (clientPod.spec.plan !== undefined && plans.get(clientPod.spec.plan)) || plans.default;
  const workspaces = config.workspaces && { ...config.workspaces, size: plan.workspaceSize };
  const [workspace] = await Promise.all([
    workspaces && ensureWorkspace(kube, clientPod, workspaces, deps.now, deadline, deps.shutdown),
    token ? kube.secrets.create(tokenSecret(clientPod, token)) : undefined,
  ]);

  // A status from the start: `kubectl get cpod` shows PHASE, LAST ACTIVITY and EXPIRES for
  // an instance nobody has used yet (its creation is its first activity, as its body says).
  // The status subresource ignores a status given at create, so this is its own write.
  let status: ClientPodStatus | undefined;
  if (isNew) {
    const record = recordOf(clientPod);
    status = { ...activityStatus(record, record.createdAt, undefined, config), phase: "Pending" };
  }
  if (workspace && clientPod.status?.workspace?.state !== workspace.state) {
    status = { ...status, workspace };
  }
  // The revision it runs, for `kubectl get cpod`: written only when it changes (a new
  // instance, or a Pod started again from a newer template).
  const revision = revisionOf(template, revisionSettingsOf(config));
  if (clientPod.status?.revision !== revision) status = { ...status, revision };
  if (config.workspaces && !workspace) {
    if (status) clientPod = (await kube.clientPods.patchStatus(name, status)) ?? clientPod;
    return { clientPod, pod: undefined, created: false };
  }

  // Made from another template than it records (its plan's changed, or its plan did): the
  // ClientPod says what its Pod is made from.
  const templateName = template.metadata?.name ?? clientPod.spec.podTemplate;
  const moved =
    templateName !== clientPod.spec.podTemplate
      ? kube.clientPods.patch(name, { spec: { podTemplate: templateName } })
      : undefined;

  // The Pod mirrors the ClientPod with this status: both writes go out at once.
  const withStatus = status
    ? clientPodSchema.parse({ ...clientPod, status: { ...clientPod.status, ...status } })
    : clientPod;
  const built = buildPod(template, withStatus, {
    annotations: { ...mirrorAnnotations(withStatus), [ANNOTATION_REVISION]: revision },
    resources: config,
    env: token ? [tokenEnv(clientPod)] : [],
    workspacePvc: workspace ? workspace.name : undefined,
  });
  // An instance made from a pool member keeps the member's Pod name (its gateway path).
  const pod = { ...built, metadata: { ...built.metadata, name: podNameOf(clientPod) } };
  // A new instance's status can wait for its Pod's phase (one write instead of two): until
  // then the reaper counts its idle time from its creation, as it would anyway.
  const firstStatus = isNew && firstStatusLater ? status : undefined;
  const [patched, result] = await Promise.all([
    status && !firstStatus ? kube.clientPods.patchStatus(name, status) : undefined,
    kube.pods.create(pod).catch(podRefused),
    moved,
  ]);
  clientPod = patched ?? clientPod;
  // 409: another replica created it a moment ago; use theirs.
  if (result.created) return { clientPod, pod: result.object, created: true, firstStatus };
  return {
    clientPod,
    pod: await kube.pods.get(podNameOf(clientPod)),
    created: false,
    firstStatus,
  };
}
