import { createHmac, timingSafeEqual } from "node:crypto";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";

/**
 * A browser's session on one preview host, kept in a cookie and nowhere else: an expiry, the
 * id of the fleet key that signed it, and an HMAC over (host, instance uid, port, expiry) under
 * that key (the instance-token keys). Any replica checks it with no state; a value copied to
 * another host, port or instance fails the MAC, and a recreated instance (a new uid) refuses
 * every session made for the old one.
 */

/** The cookie's name on every preview host (the pod cannot set cookies there). */
export const SESSION_COOKIE = "gptme_fleet_preview";

export interface SessionSubject {
  /** The preview host, lowercase, without its port. */
  hostname: string;
  /** The ClientPod's uid: a new instance of the same name is another subject. */
  uid: string;
  port: number;
}

function macOf(secret: string, subject: SessionSubject, expiresAt: number): string {
  return createHmac("sha256", secret)
    .update(
      `gptme-preview-session/v1\n${subject.hostname}\n${subject.uid}\n${subject.port}\n${expiresAt}`,
    )
    .digest("base64url");
}

/** A session for `subject` until `expiresAt` (ms), signed with the current key. */
export function signSession(keys: TokenKeys, subject: SessionSubject, expiresAt: Date): string {
  const seconds = Math.floor(expiresAt.getTime() / 1000);
  const key = keys.current;
  return `${seconds}.${key.id}.${macOf(key.secret, subject, seconds)}`;
}

/** Whether a cookie value is a live session for exactly `subject`. */
export function isValidSession(
  value: string | undefined,
  keys: TokenKeys,
  subject: SessionSubject,
  now: Date,
): boolean {
  const match = /^(\d{1,12})\.([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/.exec(value ?? "");
  if (!match?.[1] || !match[2] || !match[3]) return false;
  const seconds = Number(match[1]);
  if (seconds * 1000 <= now.getTime()) return false;
  const key = keys.byId.get(match[2]);
  if (!key) return false;
  const expected = Buffer.from(macOf(key.secret, subject, seconds));
  const given = Buffer.from(match[3]);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The values of every cookie of one name in a Cookie header. */
export function cookiesOf(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at !== -1 && part.slice(0, at).trim() === name) values.push(part.slice(at + 1).trim());
  }
  return values;
}

/** A Cookie header without the fleet's session (undefined when nothing else is left). */
export function withoutSessionCookie(header: string | undefined): string | undefined {
  const kept = (header ?? "")
    .split(";")
    .filter((part) => {
      const at = part.indexOf("=");
      const name = (at === -1 ? part : part.slice(0, at)).trim();
      return name !== "" && name !== SESSION_COOKIE;
    })
    .map((part) => part.trim());
  return kept.length ? kept.join("; ") : undefined;
}

/** The Set-Cookie of a session: for exactly this host (no Domain), its whole path, script-proof. */
export function sessionSetCookie(value: string, maxAgeMs: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor(maxAgeMs / 1000));
  return [
    `${SESSION_COOKIE}=${value}`,
    "Path=/",
    `Max-Age=${maxAge}`,
    "HttpOnly",
    "SameSite=Lax",
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}
