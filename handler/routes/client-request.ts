import { getQuery, getRouterParam, type H3Event } from "h3";
import { INSTANCE_ID_PATTERN } from "../../shared/instance/names.js";
import { FleetError } from "../errors/fleet-error.js";
import type { Client, ClientIdentities } from "../identity/clients.js";

// What every client route reads from its request: who is asking, for which instance, and how
// long it will wait. Each refuses malformed input with the contract's 400 before anything runs.

const MAX_WAIT_SECONDS = 60;

/**
 * The caller, from its key or its platform token (CLIENT_AUTH), with its plan: 403
 * unknown_plan when the plans in use have none of that name, before anything is made.
 */
export async function identify(
  event: H3Event,
  identities: ClientIdentities,
  apiKey: string | null | undefined,
): Promise<Client> {
  const client = await identities.clientOf({
    apiKey,
    authorization: event.req.headers.get("authorization"),
  });
  event.context.clientId = client.clientId;
  return client;
}

export const headerKey = (event: H3Event): string | null => event.req.headers.get("x-api-key");

export function pathKey(event: H3Event): string | undefined {
  const raw = getRouterParam(event, "apiKey");
  try {
    return raw === undefined ? undefined : decodeURIComponent(raw);
  } catch {
    throw new FleetError(
      "invalid_api_key",
      "The API key in the path is not valid percent-encoding.",
    );
  }
}

export function instanceIdOf(event: H3Event): string {
  const instanceId = getRouterParam(event, "instanceId") ?? "";
  if (!INSTANCE_ID_PATTERN.test(instanceId)) {
    throw new FleetError(
      "invalid_instance_id",
      "An instance id is 1 to 40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit.",
    );
  }
  return instanceId;
}

/** The `wait` query parameter in milliseconds: 0 to 60 seconds, else the configured default. */
export function waitOf(event: H3Event, defaultMs: number): number {
  const wait = getQuery(event).wait;
  if (wait === undefined) return defaultMs;
  if (typeof wait !== "string" || !/^\d+(\.\d+)?$/.test(wait) || Number(wait) > MAX_WAIT_SECONDS) {
    throw new FleetError(
      "invalid_wait",
      `wait is a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`,
    );
  }
  return Math.round(Number(wait) * 1000);
}
