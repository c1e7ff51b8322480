import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import { type HandlerConfig, revisionSettingsOf } from "../../shared/config/load.js";
import type { ClientPod, ClientPodStatus } from "../../shared/instance/clientpod.js";
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
  /** Undefined when the Pod must wait (its workspace claim is still being deleted). */
  pod: V1Pod | undefined;
  /** Whether this call created the Pod (false: another replica did, a moment ago). */
  created: boolean;
}

/**
 * Starts the Pod of a ClientPod that has none, in the order its parts need each other: the
 * workspace claim (made, or found and marked used), the status (a new instance's first, or
 * the workspace it now has), the token's Secret, then the Pod that mounts and reads them.
 * Every step tolerates another replica doing the same at the same time.
 */
export async function startPod(
  deps: StartDeps,
  clientPod: ClientPod,
  template: V1PodTemplate,
  keys: TokenKeys,
  { isNew, deadline }: { isNew: boolean; deadline: number },
): Promise<Started> {
  const { kube, config } = deps;
  const { name } = clientPod.metadata;
  const workspace =
    config.workspaces &&
    (await ensureWorkspace(kube, clientPod, config.workspaces, deps.now, deadline, deps.shutdown));

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
  if (status) clientPod = (await kube.clientPods.patchStatus(name, status)) ?? clientPod;
  if (config.workspaces && !workspace) return { clientPod, pod: undefined, created: false };

  // The token's Secret before the Pod that reads it; 409: it exists, with this very token
  // (the name carries the ClientPod's uid, the content is derived from it).
  const token = tokenOf(recordOf(clientPod), keys);
  if (token) await kube.secrets.create(tokenSecret(clientPod, token));
  const built = buildPod(template, clientPod, {
    annotations: { ...mirrorAnnotations(clientPod), [ANNOTATION_REVISION]: revision },
    resources: config,
    env: token ? [tokenEnv(clientPod)] : [],
    workspaceClaim: workspace ? workspace.name : undefined,
  });
  // An instance made from a pool member keeps the member's Pod name (its gateway path).
  const pod = { ...built, metadata: { ...built.metadata, name: podNameOf(clientPod) } };
  const result = await kube.pods.create(pod).catch(podRefused);
  // 409: another replica created it a moment ago; use theirs.
  if (result.created) return { clientPod, pod: result.object, created: true };
  return { clientPod, pod: await kube.pods.get(podNameOf(clientPod)), created: false };
}
