import type { ClientPod } from "./clientpod.js";
import { INSTANCE_NAME_PREFIX } from "./names.js";

// The names of an instance's parts. An instance's Pod and workspace are named after the
// instance, except when it was made from a warm-pool member: a Pod cannot be renamed, so the
// instance keeps the member's Pod and workspace under the member's name, recorded here.

/** Prefix of a member's names: random, since no client is known when it is made. */
export const POOL_NAME_PREFIX = "gptme-pool-";
/**
 * On an instance made from a member: the member's name, which is its Pod's and workspace
 * claim's name (on the ClientPod), and the uid its token was derived from (on the ClientPod
 * and the Pod): the member ClientPod's, fixed in the Pod's environment when it started.
 */
export const ANNOTATION_POOL_MEMBER = "gptme.ai/pool-member";
/**
 * On an instance's ClientPod made from a member: the same member (Pod) name as a label, for
 * people (`kubectl get cpod -l gptme.ai/pod=<name>`); requests find the instance from the
 * Pod's name by its alias (pool/alias.ts), a read by name.
 */
export const LABEL_POD = "gptme.ai/pod";
export const ANNOTATION_TOKEN_SUBJECT = "gptme.ai/token-subject";
/**
 * On an instance's ClientPod: its workspace claim when named otherwise (a returning client's
 * kept workspace, made for a pool member they were given before).
 */
export const ANNOTATION_WORKSPACE_NAME = "gptme.ai/workspace-claim";

/** An instance's Pod name: its own (deterministic), or the pool member's it adopted. */
export const POD_NAME = new RegExp(`^(${INSTANCE_NAME_PREFIX}|${POOL_NAME_PREFIX})[0-9a-f]{16}$`);

export const isPoolName = (name: string): boolean => name.startsWith(POOL_NAME_PREFIX);

/** The name of the Pod (and workspace claim) an instance's ClientPod uses. */
export const podNameOf = (cp: ClientPod): string =>
  cp.metadata.annotations?.[ANNOTATION_POOL_MEMBER] ?? cp.metadata.name;

/** The name of an instance's workspace claim. */
export const workspaceNameOf = (cp: ClientPod): string =>
  cp.metadata.annotations?.[ANNOTATION_WORKSPACE_NAME] ?? podNameOf(cp);

/** The uid an instance's token is derived from. */
export const tokenSubjectOf = (cp: ClientPod): string =>
  cp.metadata.annotations?.[ANNOTATION_TOKEN_SUBJECT] ?? cp.metadata.uid;

/**
 * The names of an instance's Pod and workspace claim, when not its own (one made from a pool
 * member keeps the member's; one over a kept workspace mounts that claim).
 */
export interface InstanceParts {
  pod: string;
  workspace: string;
}

export const partsOf = (cp: ClientPod): InstanceParts => ({
  pod: podNameOf(cp),
  workspace: workspaceNameOf(cp),
});
