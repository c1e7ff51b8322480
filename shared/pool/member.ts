import { randomBytes } from "node:crypto";
import {
  type ClientPod,
  DEFAULT_PLAN,
  LABEL_CLIENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_PLAN,
  MANAGED_BY,
  MANAGED_SELECTOR,
} from "../instance/clientpod.js";
import { POOL_NAME_PREFIX } from "../instance/parts.js";

// The warm pool: started instances without a client (ClientPod, token Secret, workspace claim
// and a Pod whose gptme-server answers), kept so that a new instance is handed out at once.
//
// A Pod cannot be renamed and its token is fixed when it starts, so a claim does not move
// the member under the instance's deterministic name: it creates the instance's ClientPod at
// that name as usual (the same create that makes cold instances exactly-once: a 409 means
// another request has the instance), recording which member it adopts, and then adopts the
// member's Pod under a test-and-set JSON patch (it must still be an unclaimed member owned by
// its member ClientPod), which moves the Pod's owner and labels to the instance. Two writes.
// The Pod keeps its name: the instance records it (instance/parts.ts), and an alias of that
// name leads back to the instance (alias.ts).

/** Marks a pool member's objects (ClientPod, Pod, Secret, workspace claim) until claimed. */
export const LABEL_POOL = "gptme.ai/pool";
export const POOL_MEMBER = "member";
export const POOL_SELECTOR = `${MANAGED_SELECTOR},${LABEL_POOL}=${POOL_MEMBER}`;
/** A member has no client: its ClientPod's spec says so with these (no key hashes to 32 zeros). */
export const POOL_CLIENT_ID = "0".repeat(32);
export const POOL_INSTANCE_ID = "pool";

/** On a member's Pod: the resourceVersion of the PodTemplate it was made from (outdated when it moves). */
export const ANNOTATION_POOL_TEMPLATE = "gptme.ai/pool-template";

/** A member's labels: the pool's, and the plan it is kept for. */
export const memberLabels = (plan: string): Record<string, string> => ({
  [LABEL_MANAGED_BY]: MANAGED_BY,
  [LABEL_POOL]: POOL_MEMBER,
  [LABEL_PLAN]: plan,
});

/** The plan a member is kept for; one from before plans is the default plan's (POD_TEMPLATE). */
export const memberPlanOf = (object: { metadata?: { labels?: Record<string, string> } }) =>
  object.metadata?.labels?.[LABEL_PLAN] ?? DEFAULT_PLAN;

export const newMemberName = (): string => POOL_NAME_PREFIX + randomBytes(8).toString("hex");

export const isPoolMember = (object: { metadata?: { labels?: Record<string, string> } }) =>
  object.metadata?.labels?.[LABEL_POOL] === POOL_MEMBER;

/** JSON Patch paths escape "/" in a key as "~1" (and "~" as "~0"). */
const pointer = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * The claim's write on the member's Pod: only if it is still an unclaimed member owned by
 * `memberUid` (the `test` operations; the API server applies the patch atomically, so of two
 * claims of one member exactly one passes), move it to the instance's ClientPod.
 */
export function adoptionPatch(
  memberUid: string,
  owner: ClientPod,
  annotations: Record<string, string>,
): object[] {
  return [
    { op: "test", path: `/metadata/labels/${pointer(LABEL_POOL)}`, value: POOL_MEMBER },
    { op: "test", path: "/metadata/ownerReferences/0/uid", value: memberUid },
    {
      op: "replace",
      path: "/metadata/ownerReferences",
      value: [
        {
          apiVersion: owner.apiVersion,
          kind: owner.kind,
          name: owner.metadata.name,
          uid: owner.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    { op: "remove", path: `/metadata/labels/${pointer(LABEL_POOL)}` },
    { op: "add", path: `/metadata/labels/${pointer(LABEL_CLIENT)}`, value: owner.spec.clientId },
    {
      op: "add",
      path: `/metadata/labels/${pointer(LABEL_INSTANCE)}`,
      value: owner.spec.instanceId,
    },
    // A member is claimed for its own plan only; the instance's record says so all the same.
    ...(owner.spec.plan === undefined
      ? []
      : [{ op: "add", path: `/metadata/labels/${pointer(LABEL_PLAN)}`, value: owner.spec.plan }]),
    ...Object.entries(annotations).map(([key, value]) => ({
      op: "add",
      path: `/metadata/annotations/${pointer(key)}`,
      value,
    })),
  ];
}
