import { API_KEY_PATTERN, sha256Hex } from "../instance/names.js";
import { parseTokenKeys, type TokenKeys } from "../tokens/instance-token.js";
import { ConfigError } from "./error.js";
import { PLAN_NAME } from "./plans.js";
import type { FileFormat } from "./reloading-file.js";

// The formats of the credential files the handler reads (and re-reads while it runs).

/**
 * The keys allowed to be clients, held as SHA-256 digests so no raw key stays in memory,
 * each with the plan its line names (none: the default plan).
 */
export class ApiKeyAllowlist {
  constructor(private readonly digests: ReadonlyMap<string, string | undefined>) {}

  allows(apiKey: string): boolean {
    return this.digests.has(sha256Hex(apiKey));
  }

  /** The plan named after the key on its line; undefined for none (or a key not listed). */
  planOf(apiKey: string): string | undefined {
    return this.digests.get(sha256Hex(apiKey));
  }

  get size(): number {
    return this.digests.size;
  }
}

/**
 * Reads an API_KEYS_FILE: one key or `sha256:<hex>` per line, optionally followed by
 * whitespace and the name of the key's plan (`sha256:<hex> pro`); blank lines and `#`
 * comments skipped. Whether the plan exists is decided per request (PLANS_FILE changes
 * on its own).
 */
export function parseApiKeys(text: string): ApiKeyAllowlist {
  const digests = new Map<string, string | undefined>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [key = "", plan, ...rest] = line.split(/\s+/);
    const where = `API_KEYS_FILE: line ${index + 1}`;
    const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(key);
    const digest = hashed?.[1]?.toLowerCase() ?? (API_KEY_PATTERN.test(key) && sha256Hex(key));
    if (!digest) throw new ConfigError(`${where} is neither an API key nor sha256:<64 hex digits>`);
    if (rest.length > 0) throw new ConfigError(`${where} has more than a key and a plan`);
    if (plan !== undefined && !PLAN_NAME.test(plan)) {
      throw new ConfigError(`${where}: what follows the key is not a plan's name`);
    }
    digests.set(digest, plan);
  });
  return new ApiKeyAllowlist(digests);
}

export const apiKeysFormat: FileFormat<ApiKeyAllowlist> = {
  parse: parseApiKeys,
  entries: (keys) => keys.size,
};

/** A file holding one secret (a token, a key): surrounding whitespace is not part of it. */
export const secretFormat = (variable: string): FileFormat<string> => ({
  parse: (text) => {
    const secret = text.trim();
    if (secret === "") throw new ConfigError(`${variable}: the file is empty`);
    return secret;
  },
  entries: () => 1,
});

/** What a read of an optional file gives when the file does not exist. */
export const MISSING_FILE = "\u0000missing";

/**
 * The admin token from a file that may not exist: a Secret mounted as an optional volume is
 * an empty directory until the Secret exists. No file: "" (the admin API answers 403
 * admin_disabled) until it appears; a file that is there must hold a token.
 */
export const optionalSecretFormat = (variable: string): FileFormat<string> => {
  const present = secretFormat(variable);
  return {
    parse: (text) => (text === MISSING_FILE ? "" : present.parse(text)),
    entries: (secret) => (secret === "" ? 0 : 1),
  };
};

/** Instance-token keys: one per line, newest first (errors name the variable, never a key). */
export const tokenKeysFormat = (variable: string): FileFormat<TokenKeys> => ({
  parse: (text) => {
    try {
      return parseTokenKeys(text);
    } catch (error) {
      throw new ConfigError(`${variable}: ${(error as Error).message}`);
    }
  },
  entries: (keys) => keys.byId.size,
});
