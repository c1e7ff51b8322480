import type { TokenKeySource } from "../config/load.js";
import type { Kube } from "../kube/client.js";
import { newTokenKey, parseTokenKeys, type TokenKeys } from "../tokens/instance-token.js";

/** The Secret that holds the fleet's token keys when no other source is configured. */
export const TOKEN_KEY_SECRET = "fleet-instance-token-key";
const TOKEN_KEY_FIELD = "keys";

/**
 * The keys instance tokens are derived from. With INSTANCE_TOKEN_SECRET(_FILE) set, those
 * (a file re-read within CREDENTIALS_RELOAD). With neither set they
 * live in a Secret of the fleet's namespace: the first replica to need one creates it with a
 * random key (a 409 means another replica won the race, and its key is read), so a fresh
 * install needs no manual step and every replica uses the same keys. That Secret is read
 * again every `reloadMs` (CREDENTIALS_RELOAD), in the background, so a rotation reaches every replica
 * without a restart and without a read on the request path.
 */
export class TokenKeyring {
  private cached: { keys: TokenKeys; readAt: number } | undefined;
  private loading: Promise<TokenKeys> | undefined;

  constructor(
    private readonly source: TokenKeySource,
    private readonly kube: Kube,
    private readonly reloadMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The keys in force; only the very first call of a process waits for the API server. */
  async keys(): Promise<TokenKeys> {
    // Configured keys come from the environment, or a file that reloads on its own.
    if (this.source.kind === "configured") return this.source.keys.current();
    const cached = this.cached;
    if (cached && this.now() - cached.readAt < this.reloadMs) return cached.keys;
    const loading = this.load();
    if (!cached) return loading;
    // Stale: answer with what is known and refresh for the next request.
    loading.catch(() => undefined);
    return cached.keys;
  }

  private load(): Promise<TokenKeys> {
    this.loading ??= this.readOrCreate()
      .then((keys) => {
        this.cached = { keys, readAt: this.now() };
        return keys;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  private async readOrCreate(): Promise<TokenKeys> {
    const { secrets } = this.kube;
    let secret = await secrets.get(TOKEN_KEY_SECRET);
    if (!secret) {
      const created = await secrets.create({
        metadata: {
          name: TOKEN_KEY_SECRET,
          labels: { "app.kubernetes.io/part-of": "gptme-fleet" },
        },
        type: "Opaque",
        stringData: { [TOKEN_KEY_FIELD]: `${newTokenKey()}\n` },
      });
      secret = created.created ? created.object : await secrets.get(TOKEN_KEY_SECRET);
    }
    const encoded = secret?.data?.[TOKEN_KEY_FIELD];
    if (!encoded) {
      throw new Error(`the Secret ${TOKEN_KEY_SECRET} has no "${TOKEN_KEY_FIELD}" entry`);
    }
    return parseTokenKeys(Buffer.from(encoded, "base64").toString("utf8"));
  }
}
