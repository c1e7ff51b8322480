import { timingSafeEqual } from "node:crypto";
import type { HandlerConfig } from "../../shared/config/load.js";
import { API_KEY_PATTERN, clientIdOf, sha256Hex } from "../../shared/instance/names.js";
import { FleetError } from "../errors/fleet-error.js";
import { bearerOf } from "./bearer.js";

/** A client as its credential names it: the one-way client id, and the plan named with it. */
export interface NamedClient {
  clientId: string;
  /** Undefined: none named (the default plan). */
  plan: string | undefined;
}

/**
 * The client behind an API key, with the plan its API_KEYS_FILE line names, or the error
 * that refuses it. The key itself goes no further.
 */
export function clientOfKey(apiKey: string | null | undefined, config: HandlerConfig): NamedClient {
  if (apiKey === undefined || apiKey === null || apiKey === "") {
    throw new FleetError("missing_api_key", "Send your API key in the X-API-Key header.");
  }
  if (!API_KEY_PATTERN.test(apiKey)) {
    throw new FleetError(
      "invalid_api_key",
      "An API key is 8 to 256 characters of A-Z, a-z, 0-9 and . _ ~ + / = -",
    );
  }
  const allowlist = config.apiKeys?.current();
  if (allowlist && !allowlist.allows(apiKey)) {
    throw new FleetError("unknown_api_key", "This API key is not allowed to use the fleet.");
  }
  return { clientId: clientIdOf(apiKey, config.clientIdSecret), plan: allowlist?.planOf(apiKey) };
}

/** Checks an admin's bearer token in constant time; refuses everyone when none is configured. */
export function requireAdmin(
  authorization: string | null | undefined,
  config: HandlerConfig,
): void {
  const adminToken = config.adminToken?.current();
  if (!adminToken) {
    throw new FleetError(
      "admin_disabled",
      "The admin API is disabled: no admin token is configured.",
    );
  }
  const presented = bearerOf(authorization ?? undefined);
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  const given = sha256Hex(presented ?? "");
  const expected = sha256Hex(adminToken);
  if (presented === undefined || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    throw new FleetError(
      "unauthorized",
      "A valid admin token is required: Authorization: Bearer <token>.",
    );
  }
}
