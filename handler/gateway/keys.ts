import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";

/** How long the keys in force are taken as they are before the keyring is asked again. */
const KEYS_FOR_MS = 1_000;

/**
 * The instance-token keys as the proxied routes check every request with: the keyring's
 * (which reloads them every CREDENTIALS_RELOAD), asked at most once a second, so a request
 * waits for nothing once the keys are known.
 */
export class KeysAtHand {
  private latest: { keys: TokenKeys; at: number } | undefined;

  constructor(
    private readonly keyring: TokenKeyring,
    private readonly now: () => number = Date.now,
  ) {}

  /** The keys, at once when known; else once the keyring has them. */
  get(): TokenKeys | Promise<TokenKeys> {
    const latest = this.latest;
    if (latest && this.now() - latest.at < KEYS_FOR_MS) return latest.keys;
    return this.keyring.keys().then((keys) => {
      this.latest = { keys, at: this.now() };
      return keys;
    });
  }
}
