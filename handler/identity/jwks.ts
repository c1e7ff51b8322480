import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import type { Logger } from "../../shared/log.js";

/** No key set has been fetched yet: requests with a JWT answer 503 identity_unavailable. */
export class JwksUnavailableError extends Error {
  override name = "JwksUnavailableError";
}

/** How long one fetch of the key set may take. */
const FETCH_TIMEOUT_MS = 5_000;
/** Until the first fetch succeeds, it is retried this often (the process serves meanwhile). */
const FIRST_FETCH_RETRY_MS = 2_000;

/**
 * The issuer's JSON Web Key Set, kept in memory: fetched at start (retried until it
 * answers), refreshed every `refreshMs` in the background (so a key the issuer withdrew stops
 * working), and fetched again when a token names an unknown `kid`, at most once per
 * `refreshMs` (so a key the issuer rotated in works at once, and tokens with made-up `kid`s
 * cannot make the fleet hammer the issuer). Key selection and algorithm checks are jose's.
 */
export class JwksCache {
  private local: JWTVerifyGetKey | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly refreshMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a key set is in memory. */
  get loaded(): boolean {
    return this.local !== undefined;
  }

  /** Fetches now, then keeps the set fresh; the timers never keep the process alive. */
  start(): void {
    const tick = async () => {
      await this.fetch().catch(() => undefined);
      this.timer = setTimeout(tick, this.loaded ? this.refreshMs : FIRST_FETCH_RETRY_MS);
      this.timer.unref();
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** jose's key lookup: the key for a token's header, re-fetching once for an unknown kid. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.local) throw new JwksUnavailableError("no JSON Web Key Set has been fetched yet");
    try {
      return await this.local(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      if (this.now() - this.fetchedAt < this.refreshMs) throw error;
      // An issuer that cannot be asked leaves the kid unknown: the token is refused.
      await this.fetch().catch(() => {
        throw error;
      });
      return this.local(header, token);
    }
  };

  /** One fetch (concurrent callers share it); a failure keeps the set already held. */
  private fetch(): Promise<void> {
    this.pending ??= this.download()
      .then((jwks) => {
        this.local = createLocalJWKSet(jwks);
        this.fetchedAt = this.now();
        this.log.info({ keys: jwks.keys.length }, "fetched the JSON Web Key Set");
      })
      .catch((error: Error) => {
        // Counted as an attempt: an unreachable issuer is not asked again at every request.
        this.fetchedAt = this.now();
        this.log.warn({ reason: error.message }, "cannot fetch the JSON Web Key Set");
        throw error;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async download(): Promise<JSONWebKeySet> {
    const response = await fetch(this.url, {
      headers: { accept: "application/json, application/jwk-set+json" },
      redirect: "error",
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (response.status !== 200) throw new Error(`the JWKS URL answered ${response.status}`);
    const jwks = (await response.json()) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new Error("the JWKS URL did not answer a key set");
    return jwks;
  }
}
