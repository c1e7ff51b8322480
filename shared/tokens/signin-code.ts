import { createHash, randomBytes } from "node:crypto";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { z } from "zod";
import {
  API_VERSION,
  KIND,
  LABEL_CLIENT,
  LABEL_INSTANCE,
  LABEL_KIND,
  LABEL_MANAGED_BY,
  MANAGED_BY,
} from "../instance/clientpod.js";

/**
 * One-time sign-in codes (login links, preview links). Each code lives as one ConfigMap,
 * named by a hash of the code, so an exchange is one GET by name and the raw code is never
 * stored; owned by the instance's ClientPod, so it dies with the instance; consumed by a
 * DELETE with a uid precondition, so exactly one exchange wins across replicas. A ConfigMap
 * rather than a Secret: it holds nothing secret (a hash cannot be exchanged), and reading it
 * needs no read access to Secrets, where every instance's token lives.
 */

export const CODE_KIND = "signin-code";
/** Selects every code object (the reaper removes expired ones). */
export const CODE_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_KIND}=${CODE_KIND}`;

/** What a code may be exchanged for: a login, or a preview of one port. */
export type CodePurpose = "login" | `preview:${number}`;
const PURPOSE = /^(login|preview:\d{1,5})$/;

// 256 random bits as base64url: 43 characters, nothing else is ever a code.
const CODE_BYTES = 32;
const CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const NAME_PREFIX = "gptme-code-";

/** A new code: 256 random bits, base64url. */
export const newCode = (): string => randomBytes(CODE_BYTES).toString("base64url");

/** Whether a presented string could be a code at all (anything else is unknown, unread). */
export const isCodeShaped = (text: string): boolean => CODE_PATTERN.test(text);

/**
 * The name of the object that stands for a code. A plain SHA-256 suffices: a code has 256
 * random bits, so its hash can neither be guessed nor inverted.
 */
export function codeObjectName(code: string): string {
  return NAME_PREFIX + createHash("sha256").update(`gptme-fleet code\n${code}`).digest("hex");
}

/** The instance a code signs in to. */
export interface CodeInstance {
  /** The ClientPod's (and Pod's) name. */
  name: string;
  /** The ClientPod's uid: a recreated instance refuses codes minted for the old one. */
  uid: string;
  clientId: string;
  instanceId: string;
}

/** What a code object records (never the code). */
export interface CodeRecord {
  /** The object's own uid, the precondition of the delete that consumes it. */
  objectUid: string;
  resourceVersion: string;
  instance: CodeInstance;
  purpose: CodePurpose;
  expiresAt: Date;
}

/** The manifest of the object for a new code. */
export function codeManifest(
  code: string,
  instance: CodeInstance,
  purpose: CodePurpose,
  expiresAt: Date,
): V1ConfigMap {
  if (!PURPOSE.test(purpose)) throw new Error(`not a code purpose: ${purpose}`);
  return {
    metadata: {
      name: codeObjectName(code),
      labels: {
        [LABEL_MANAGED_BY]: MANAGED_BY,
        [LABEL_KIND]: CODE_KIND,
        [LABEL_CLIENT]: instance.clientId,
        [LABEL_INSTANCE]: instance.instanceId,
      },
      // Not a controller: the ClientPod's garbage collection removes it, nothing more.
      ownerReferences: [
        { apiVersion: API_VERSION, kind: KIND, name: instance.name, uid: instance.uid },
      ],
    },
    // Nobody edits a code; it is created, read and deleted.
    immutable: true,
    data: {
      instance: instance.name,
      instanceUid: instance.uid,
      purpose,
      expiresAt: expiresAt.toISOString(),
    },
  };
}

const codeObjectSchema = z.object({
  metadata: z.object({
    name: z.string().startsWith(NAME_PREFIX),
    uid: z.string().min(1),
    resourceVersion: z.string().min(1),
    labels: z.object({ [LABEL_CLIENT]: z.string(), [LABEL_INSTANCE]: z.string() }),
  }),
  data: z.object({
    instance: z.string().min(1),
    instanceUid: z.string().min(1),
    purpose: z.string().regex(PURPOSE),
    expiresAt: z.iso.datetime(),
  }),
});

/** A code object read back; undefined when it is not one the fleet made. */
export function codeRecordOf(object: unknown): CodeRecord | undefined {
  const parsed = codeObjectSchema.safeParse(object);
  if (!parsed.success) return undefined;
  const { metadata, data } = parsed.data;
  return {
    objectUid: metadata.uid,
    resourceVersion: metadata.resourceVersion,
    instance: {
      name: data.instance,
      uid: data.instanceUid,
      clientId: metadata.labels[LABEL_CLIENT],
      instanceId: metadata.labels[LABEL_INSTANCE],
    },
    purpose: data.purpose as CodePurpose,
    expiresAt: new Date(data.expiresAt),
  };
}

/** A code may be exchanged strictly before its expiry. */
export const isCodeExpired = (record: Pick<CodeRecord, "expiresAt">, now: Date): boolean =>
  now.getTime() >= record.expiresAt.getTime();
