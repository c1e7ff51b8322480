import { API_KEY_PATTERN, sha256Hex } from "../instance/names.js";
import { parseTokenKeys, type TokenKeys } from "../tokens/instance-token.js";
import { ConfigError } from "./error.js";
import type { FileFormat } from "./reloading-file.js";

// The formats of the credential files the handler reads (and re-reads while it runs).

/** The keys allowed to be clients, held as SHA-256 digests so no raw key stays in memory. */
export class ApiKeyAllowlist {
  constructor(private readonly digests: ReadonlySet<string>) {}

  allows(apiKey: string): boolean {
    return this.digests.has(sha256Hex(apiKey));
  }

  get size(): number {
    return this.digests.size;
  }
}

/** Reads an API_KEYS_FILE: one key or `sha256:<hex>` per line; blank lines and `#` comments skipped. */
export function parseApiKeys(text: string): ApiKeyAllowlist {
  const digests = new Set<string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(line);
    if (hashed?.[1]) digests.add(hashed[1].toLowerCase());
    else if (API_KEY_PATTERN.test(line)) digests.add(sha256Hex(line));
    else
      throw new ConfigError(
        `API_KEYS_FILE: line ${index + 1} is neither an API key nor sha256:<64 hex digits>`,
      );
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
