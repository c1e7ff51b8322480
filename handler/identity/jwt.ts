import { createHash } from "node:crypto";
import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import type { JwtSettings } from "../../shared/config/jwt-settings.js";
import type { Logger } from "../../shared/log.js";
import { JwksCache, JwksUnavailableError } from "./jwks.js";

/** The person a verified token names: the issuer and its subject, and the plan it names. */
export interface JwtIdentity {
  issuer: string;
  subject: string;
  /** The claim at JWT_PLAN_CLAIM; undefined when unset or absent (the default plan). */
  plan?: string | undefined;
}

/** A token that failed: the reason is for the log, never for the caller. */
export class InvalidJwtError extends Error {
  override name = "InvalidJwtError";
}

export { JwksUnavailableError };

const ASYMMETRIC = ["RS256", "ES256", "EdDSA"];
/** The most clock skew tolerated on `exp` and `nbf`. */
const LEEWAY_SECONDS = 30;
/** Verified tokens are remembered this long at most, so a withdrawn key stops working soon. */
const REMEMBER_MS = 60_000;
const MAX_REMEMBERED = 10_000;

/**
 * Verifies platform JWTs with jose: the algorithm allow-list, the signature, `iss`, `aud`,
 * `exp` and `nbf` (with leeway), and a `sub`. A token verified once is remembered (by its
 * digest) until it expires or for a minute, so a client's every request does not pay for
 * a signature check.
 */
export class JwtVerifier {
  private readonly jwks: JwksCache | undefined;
  private readonly remembered = new Map<string, { identity: JwtIdentity; until: number }>();

  constructor(
    private readonly settings: JwtSettings,
    log: Logger,
    private readonly now: () => number = Date.now,
    private readonly maxRemembered = MAX_REMEMBERED,
  ) {
    this.jwks = settings.jwksUrl
      ? new JwksCache(settings.jwksUrl, settings.refreshMs, log, now)
      : undefined;
  }

  start(): void {
    this.jwks?.start();
  }

  stop(): void {
    this.jwks?.stop();
  }

  /** The identity in a token; throws InvalidJwtError, or JwksUnavailableError (503). */
  async verify(token: string): Promise<JwtIdentity> {
    const digest = createHash("sha256").update(token).digest("base64url");
    const known = this.remembered.get(digest);
    if (known && this.now() < known.until) return known.identity;
    if (known) this.remembered.delete(digest);

    const options: JWTVerifyOptions = {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      clockTolerance: LEEWAY_SECONDS,
      requiredClaims: ["sub", "exp"],
      currentDate: new Date(this.now()),
    };
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new InvalidJwtError("not a JWS compact token");
    }
    let payload: JWTPayload;
    try {
      if (alg === "HS256") {
        const secret = this.settings.secret?.current();
        if (!secret) throw new InvalidJwtError("HS256 without JWT_SECRET_FILE");
        ({ payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
          ...options,
          algorithms: ["HS256"],
        }));
      } else {
        if (!this.jwks) throw new InvalidJwtError(`${alg} without JWT_JWKS_URL`);
        ({ payload } = await jwtVerify(token, this.jwks.getKey, {
          ...options,
          algorithms: ASYMMETRIC,
        }));
      }
    } catch (error) {
      if (error instanceof InvalidJwtError || error instanceof JwksUnavailableError) throw error;
      // Only jose's own verdicts are a bad token; anything else (the issuer unreachable
      // while fetching for a new kid) is a failure of ours.
      if (error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout)) {
        throw new InvalidJwtError(`${error.code}: ${error.message}`);
      }
      throw error;
    }
    const identity: JwtIdentity = { issuer: this.settings.issuer, subject: String(payload.sub) };
    if (this.settings.planClaim) identity.plan = planClaimOf(payload, this.settings.planClaim);
    this.remember(digest, identity, (payload.exp ?? 0) * 1000 + LEEWAY_SECONDS * 1000);
    return identity;
  }

  /**
   * Full, it forgets the token remembered first (insertion order; about the first to expire
   * too): a burst of new tokens costs the others nothing, where clearing the whole map made
   * every client's next request pay for a signature check again.
   */
  private remember(digest: string, identity: JwtIdentity, expiresAt: number): void {
    if (this.remembered.size >= this.maxRemembered) {
      const oldest = this.remembered.keys().next().value;
      if (oldest !== undefined) this.remembered.delete(oldest);
    }
    this.remembered.set(digest, {
      identity,
      until: Math.min(expiresAt, this.now() + REMEMBER_MS),
    });
  }
}

/**
 * The plan a token's claim names, at a dot path (`app_metadata.plan`). Absent or null: none
 * (the default plan). Anything but a string or a number cannot name a plan and is kept as
 * it is written, so that it is refused as a plan the fleet does not offer.
 */
export function planClaimOf(payload: JWTPayload, path: readonly string[]): string | undefined {
  let value: unknown = payload;
  for (const key of path) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (value === undefined || value === null) return undefined;
  return typeof value === "string" ? value : JSON.stringify(value);
}
