import { createHmac } from "node:crypto";
import type { TokenKey } from "../../shared/tokens/instance-token.js";
import { tokensMatch } from "../../shared/tokens/instance-token.js";

/**
 * Event-stream tokens (`sseToken`): what gptme's web UI puts in `?token=` of its event
 * streams instead of the instance token, which would otherwise sit in every proxy's access
 * log. Stateless: the issue time and an HMAC over it and the instance's ClientPod uid,
 * under the instance's token key, so any replica checks one without a read, and a recreated
 * instance (a new uid) refuses every token of the old one.
 */

const PREFIX = "sse1";
const SHAPE = /^sse1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

function mac(key: TokenKey, uid: string, issuedAtSeconds: number): string {
  return createHmac("sha256", key.secret)
    .update(`gptme-sse-token/v1\n${uid}\n${issuedAtSeconds}`)
    .digest("base64url");
}

/** A new event-stream token for the instance whose ClientPod has `uid`. */
export function sseTokenOf(key: TokenKey, uid: string, issuedAt: Date): string {
  const seconds = Math.floor(issuedAt.getTime() / 1000);
  return `${PREFIX}.${seconds}.${mac(key, uid, seconds)}`;
}

/** Whether a string is shaped like an event-stream token (and so is not an instance token). */
export const isSseTokenShaped = (token: string): boolean => SHAPE.test(token);

/**
 * Whether `token` is an event-stream token of this instance, issued no longer than `ttlMs`
 * before `now` (and not in the future, beyond a little clock skew between replicas).
 */
export function isValidSseToken(
  token: string,
  key: TokenKey,
  uid: string,
  now: Date,
  ttlMs: number,
): boolean {
  const match = SHAPE.exec(token);
  if (!match?.[1] || !match[2]) return false;
  const issuedAt = Number(match[1]);
  const ageMs = now.getTime() - issuedAt * 1000;
  if (ageMs >= ttlMs || ageMs < -SKEW_MS) return false;
  return tokensMatch(match[2], mac(key, uid, issuedAt));
}

/** Replicas' clocks may differ by this much. */
const SKEW_MS = 30_000;
