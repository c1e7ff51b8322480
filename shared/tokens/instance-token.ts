import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { InstanceRecord } from "../instance/record.js";

/**
 * Instance tokens: every instance's bearer token is derived from its ClientPod's uid under a
 * fleet key, so any replica can compute and check it with no shared state but the key, and
 * a recreated instance (a new uid) has a new token while the old one stops working at once.
 */

/** A key the fleet derives tokens from, and its id (recorded on each instance, never secret). */
export interface TokenKey {
  id: string;
  secret: string;
}

/**
 * The keys in force: `current` signs new instances; every key stays able to serve the
 * instances made with it, so a key is rotated by putting a new one first and removing the
 * old one once no instance uses it.
 */
export interface TokenKeys {
  current: TokenKey;
  byId: ReadonlyMap<string, TokenKey>;
}

// A key must carry at least as much entropy as the 256-bit tokens made from it.
const MIN_KEY_LENGTH = 32;

/** Keys from text: one per line, newest first; blank lines and `#` comments skipped. */
export function parseTokenKeys(text: string): TokenKeys {
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((secret, index): TokenKey => {
      if (secret.length < MIN_KEY_LENGTH) {
        throw new Error(`key ${index + 1} is shorter than ${MIN_KEY_LENGTH} characters`);
      }
      return { id: tokenKeyIdOf(secret), secret };
    });
  const current = keys[0];
  if (!current) throw new Error("no key (one per line, newest first)");
  return { current, byId: new Map(keys.map((key) => [key.id, key])) };
}

/** A new random key, for a fleet that has none yet. */
export const newTokenKey = (): string => randomBytes(32).toString("base64url");

/** A short, stable id of a key; it tells which key made a token without revealing it. */
export function tokenKeyIdOf(secret: string): string {
  return createHash("sha256")
    .update(`gptme-fleet token key id\n${secret}`)
    .digest("hex")
    .slice(0, 12);
}

// Every proxied request checks a token: derived ones are kept (they never change for a key
// and a uid), within a bound whatever the number of instances.
const derived = new Map<string, string>();
const MAX_DERIVED = 10_000;

/** The bearer token of the instance whose ClientPod has `uid`: 256 bits, base64url. */
export function instanceTokenOf(key: TokenKey, uid: string): string {
  const id = `${key.id}/${uid}`;
  let token = derived.get(id);
  if (token === undefined) {
    token = createHmac("sha256", key.secret)
      .update(`gptme-instance-token/v1\n${uid}`)
      .digest("base64url");
    if (derived.size >= MAX_DERIVED) derived.clear();
    derived.set(id, token);
  }
  return token;
}

/**
 * Compares a presented token with the expected one in constant time. Every token has the same
 * public length (43 characters), so a token of another length is refused without comparing.
 */
export function tokensMatch(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The instance's token, when its key is known (older instances have none). */
export function tokenOf(record: InstanceRecord, keys: TokenKeys): string | undefined {
  const key = record.tokenKeyId === undefined ? undefined : keys.byId.get(record.tokenKeyId);
  return key && instanceTokenOf(key, record.tokenSubject);
}
