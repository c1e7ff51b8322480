import type { V1Pod, V1PodTemplate } from "@kubernetes/client-node";
import { type Plan, planRecordOf } from "../config/plans.js";
import { ANNOTATION_TOKEN_KEY, type ClientPod, clientPodManifest } from "../instance/clientpod.js";
import { buildPod, type ResourceDefaults } from "../instance/pod-spec.js";
import { ANNOTATION_REVISION, revisionOf } from "../instance/revision.js";
import { answersHealth, healthUrlOf, servingAnnotations } from "../instance/serving.js";
import { type WorkspaceSettings, workspacePvc } from "../instance/workspace.js";
import type { Kube } from "../kube/client.js";
import type { Logger } from "../log.js";
import {
  ANNOTATION_POOL_TEMPLATE,
  memberLabels,
  newMemberName,
  POOL_CLIENT_ID,
  POOL_INSTANCE_ID,
} from "../pool/member.js";
import {
  entriesOf,
  type IndexEntry,
  indexPatch,
  POOL_INDEX_NAME,
  poolIndexManifest,
  unlistedEntries,
} from "../pool/member-index.js";
import { instanceTokenOf, type TokenKey } from "../tokens/instance-token.js";
import { tokenEnv, tokenSecret, tokenSecretNameOf } from "../tokens/secret.js";

export interface MemberSettings {
  /** The plan it is kept for: its template, its workspace's size, its instance's timeouts. */
  plan: Plan;
  resources: ResourceDefaults;
  /** Each member's own new workspace claim (the plan's size); undefined with WORKSPACES=off. */
  workspaces: WorkspaceSettings | undefined;
}

/**
 * Starts one pool member: its ClientPod, then the token Secret, the workspace claim and the
 * Pod that reads and mounts them, all labelled as a member. The Secret is then handed to the
 * Pod as its owner, so that it stays with the Pod when a claim adopts the Pod and the member
 * ClientPod goes. Last, it is listed in the pool's index, where claims find it. Returns the
 * member's Pod; undefined when the API server refused it (a quota: the fleet is full,
 * members included).
 */
export async function startMember(
  kube: Kube,
  template: V1PodTemplate,
  key: TokenKey,
  settings: MemberSettings,
  now: Date,
): Promise<V1Pod | undefined> {
  const name = newMemberName();
  const { plan } = settings;
  const manifest = clientPodManifest({
    name,
    clientId: POOL_CLIENT_ID,
    instanceId: POOL_INSTANCE_ID,
    podTemplate: plan.template,
    plan: planRecordOf(plan),
    tokenKeyId: key.id,
  });
  manifest.metadata.labels = memberLabels(plan.name);
  const created = await kube.clientPods.create(manifest).catch(() => ({ created: false as const }));
  if (!created.created) return undefined;
  const member: ClientPod = created.object;
  const { uid } = member.metadata;
  const secret = tokenSecret(member, instanceTokenOf(key, uid));
  secret.metadata = { ...secret.metadata, labels: memberLabels(plan.name) };
  await kube.secrets.create(secret);
  if (settings.workspaces) {
    const claim = workspacePvc(
      { name, uid, clientId: POOL_CLIENT_ID, instanceId: POOL_INSTANCE_ID },
      { ...settings.workspaces, size: plan.workspaceSize },
      now,
    );
    claim.metadata = { ...claim.metadata, labels: memberLabels(plan.name) };
    if (!(await kube.workspaces.create(claim).catch(() => ({ created: false }))).created) {
      await kube.clientPods.delete(name, { uid });
      return undefined;
    }
  }
  // The revision it runs, as an instance's (`kubectl get cpod`, admin, the rollout): a
  // claimed member is current or outdated like any instance started from the same template.
  const revision = revisionOf(template, {
    defaultCpuLimit: settings.resources.defaultCpuLimit,
    defaultMemoryLimit: settings.resources.defaultMemoryLimit,
    workspaces: settings.workspaces !== undefined,
  });
  await kube.clientPods.patchStatus(name, { revision });
  const pod = buildPod(template, member, {
    annotations: {
      [ANNOTATION_TOKEN_KEY]: key.id,
      [ANNOTATION_POOL_TEMPLATE]: template.metadata?.resourceVersion ?? "",
      [ANNOTATION_REVISION]: revision,
    },
    resources: settings.resources,
    env: [tokenEnv(member)],
    workspacePvc: settings.workspaces ? name : undefined,
  });
  pod.metadata = {
    ...pod.metadata,
    labels: { ...pod.metadata?.labels, ...memberLabels(plan.name) },
  };
  for (const label of ["gptme.ai/client", "gptme.ai/instance"]) delete pod.metadata.labels?.[label];
  const started = await kube.pods.create(pod).catch(() => ({ created: false as const }));
  if (!started.created) {
    await kube.clientPods.delete(name, { uid });
    return undefined;
  }
  const podUid = started.object.metadata?.uid ?? "";
  await kube.secrets.patch(tokenSecretNameOf(member), {
    metadata: {
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name, uid: podUid }],
    },
  });
  await indexMember(kube, name, { uid, tokenKeyId: key.id, serving: false, plan: plan.name });
  return started.object;
}

/** Lists a member in the pool's index (or updates its entry: it now serves, say). */
export function indexMember(kube: Kube, name: string, entry: IndexEntry): Promise<void> {
  return writeIndexChanges(kube, new Map([[name, entry]]));
}

/** Writes entries of the pool's index (null takes one out) in one merge patch. */
export async function writeIndexChanges(
  kube: Kube,
  changes: ReadonlyMap<string, IndexEntry | null>,
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await kube.configMaps.patch(POOL_INDEX_NAME, indexPatch(changes))) return;
    // No index yet: the first member makes it (409: another just did; patch theirs).
    const index = poolIndexManifest();
    const added = [...changes].filter(([, entry]) => entry !== null);
    if (added.length === 0) return;
    index.data = Object.fromEntries(added.map(([name, entry]) => [name, JSON.stringify(entry)]));
    if ((await kube.configMaps.create(index)).created) return;
  }
}

/** Takes a member out of the pool's index (claimed, or found gone). */
export async function unindexMember(kube: Kube, name: string): Promise<void> {
  await writeIndexChanges(kube, new Map([[name, null]]));
}

/** How often a member that has not answered yet is asked again, and how long each ask may take. */
const ASK_EVERY_MS = 250;
const ASK_TIMEOUT_MS = 1_000;

/**
 * Waits, until `deadline` (epoch ms), for a member's gptme-server to answer at its Pod IP,
 * then records it (on the Pod, as every sighting is, and in the pool's index): a claim of it
 * then answers `ready` at once. For whoever starts members without the handler's pollers
 * (the reaper's pass). True when it answered.
 */
export async function awaitMemberServing(
  kube: Kube,
  started: V1Pod,
  key: TokenKey,
  plan: string,
  deadline: number,
  now: () => Date = () => new Date(),
): Promise<boolean> {
  const name = started.metadata?.name ?? "";
  const podUid = started.metadata?.uid ?? "";
  const memberUid = started.metadata?.ownerReferences?.[0]?.uid ?? "";
  let pod: V1Pod | undefined = started;
  while (Date.now() < deadline) {
    const url = pod && healthUrlOf(pod);
    if (url && (await answersHealth(url, ASK_TIMEOUT_MS))) {
      const recorded = await kube.pods.patchIfSame(name, podUid, {
        metadata: { annotations: servingAnnotations(now()) },
      });
      if (!recorded) return false;
      await indexMember(kube, name, { uid: memberUid, tokenKeyId: key.id, plan, serving: true });
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
    // No IP yet: the Pod as the API server's cache has it now.
    if (!url) pod = await kube.pods.get(name, { fromCache: true });
    if (!pod || pod.metadata?.uid !== podUid) return false;
  }
  return false;
}

/**
 * Drops the pool index's entries of members that are gone. A handler replica counts the index
 * before it starts a member, so stale entries would stop it refilling the pool (seen on the
 * real node: three entries of removed members kept a plan's pool empty).
 * An entry that names no member the pass listed is read again by name before it goes: a
 * member made since the list is kept.
 */
export async function pruneIndex(
  kube: Kube,
  members: readonly ClientPod[],
  log: Logger,
): Promise<number> {
  const index = await kube.configMaps.get(POOL_INDEX_NAME);
  const entries = entriesOf(index);
  let dropped = 0;
  for (const name of unlistedEntries(entries, members)) {
    const member = await kube.clientPods.get(name);
    if (member && member.metadata.uid === entries.get(name)?.uid) continue;
    await unindexMember(kube, name);
    dropped++;
  }
  if (dropped > 0) log.info({ unindexed: dropped }, "pool: index entries of gone members dropped");
  return dropped;
}
