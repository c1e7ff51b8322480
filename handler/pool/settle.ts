import type { V1Pod } from "@kubernetes/client-node";
import type { HandlerConfig } from "../../shared/config/load.js";
import { type ClientPod, LABEL_CLIENT, LABEL_INSTANCE } from "../../shared/instance/clientpod.js";
import { recordOf } from "../../shared/instance/record.js";
import { podRevisionOf } from "../../shared/instance/revision.js";
import { activityStatus } from "../../shared/instance/status.js";
import { ANNOTATION_CREATED_FOR } from "../../shared/instance/workspace.js";
import type { Kube } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import { podAliasManifest, workspaceAliasManifest } from "../../shared/pool/alias.js";
import { LABEL_POOL } from "../../shared/pool/member.js";
import type { MemberIndexView } from "./member-index-view.js";

/** What settling a claim needs of the pool. */
export interface SettleDeps {
  kube: Kube;
  config: HandlerConfig;
  log: Logger;
  /** The pool's index as this replica writes it (batched). */
  index: MemberIndexView;
}

/**
 * What a claim leaves for after its answer: the instance's first status, the alias from
 * the member's name to the instance, its workspace claim labelled as the client's (so a later instance of theirs finds it kept), and the
 * member's own ClientPod deleted (its Pod and Secret belong to the instance now). Each step
 * is repeated by the reaper's pass if this replica does not get to it.
 */
export async function settleClaim(
  deps: SettleDeps,
  instance: ClientPod,
  memberName: string,
  memberUid: string,
  pod: V1Pod,
): Promise<void> {
  const { kube, config } = deps;
  const record = recordOf(instance);
  try {
    await Promise.all([
      kube.clientPods.patchStatus(instance.metadata.name, {
        ...activityStatus(record, record.createdAt, pod, config),
        workspace: record.workspace,
        // The member's: its Pod runs on unchanged.
        revision: podRevisionOf(pod),
      }),
      // The way back from the Pod's name to the instance, once the Pod is gone (alias.ts).
      kube.configMaps.create(podAliasManifest(memberName, instance)),
      deps.index.change(memberName, null),
    ]);
    if (config.workspaces) {
      const workspace = await kube.workspaces.patch(memberName, {
        metadata: {
          labels: {
            [LABEL_CLIENT]: instance.spec.clientId,
            [LABEL_INSTANCE]: instance.spec.instanceId,
            [LABEL_POOL]: null,
          },
          annotations: { [ANNOTATION_CREATED_FOR]: instance.metadata.uid },
        },
      });
      // The way to it from the instance's name, for the client's next instance of this id.
      const uid = workspace?.metadata?.uid;
      if (uid)
        await kube.configMaps.create(workspaceAliasManifest(instance, { name: memberName, uid }));
    }
    await kube.clientPods.delete(memberName, { uid: memberUid });
  } catch (error) {
    deps.log.warn(
      { err: { message: (error as Error).message }, instance: instance.metadata.name },
      "pool: a claim's follow-up failed; the reaper's pass completes it",
    );
  }
}
