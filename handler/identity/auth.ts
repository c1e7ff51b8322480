import { timingSafeEqual } from "node:crypto";
import type { HandlerConfig } from "../../shared/config/load.js";
import { API_KEY_PATTERN, clientIdOf, sha256Hex } from "../../shared/instance/names.js";
import { FleetError } from "../errors/fleet-error.js";
import { bearerOf } from "./bearer.js";

/** The client behind an API key, or the error that refuses it. The key itself goes no further. */
export function clientIdFor(apiKey: string | null | undefined, config: HandlerConfig): string {
  if (apiKey === undefined || apiKey === null || apiKey === "") {
    throw new FleetError("missing_api_key", "Send your API key in the X-API-Key header.");
  }
  if (!API_KEY_PATTERN.test(apiKey)) {
    throw new FleetError(
      "invalid_api_key",
      "An API key is 8 to 256 characters of A-Z, a-z, 0-9 and . _ ~ + / = -",
    );
  }
  if (config.apiKeys && !config.apiKeys.current().allows(apiKey)) {
    throw new FleetError("unknown_api_key", "This API key is not allowed to use the fleet.");
  }
  return clientIdOf(apiKey, config.clientIdSecret);
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
