import { getQuery, getRouterParam, type H3, type H3Event } from "h3";
import type { HandlerConfig } from "../../shared/config/load.js";
import { INSTANCE_ID_PATTERN, instanceNameOf } from "../../shared/instance/names.js";
import { apiError } from "../errors.js";
import type { ClientIdentities } from "../identity/clients.js";
import type { InstanceBody } from "../instances/body.js";
import { type Instances, STARTING_RETRY_AFTER_SECONDS } from "../instances/instances.js";
import { purgeOf } from "./purge.js";

const MAX_WAIT_SECONDS = 60;

/** The client API: each client sees and manages only its own instances. */
export function instanceRoutes(
  app: H3,
  config: HandlerConfig,
  instances: Instances,
  identities: ClientIdentities,
): void {
  app.get("/instances/:instanceId", (event) =>
    getInstance(event, config, instances, identities, headerKey(event)),
  );
  // For gateways that forward the public path unchanged: the key is the path segment.
  app.get("/api/v1/:apiKey/instances/:instanceId", (event) =>
    getInstance(event, config, instances, identities, pathKey(event)),
  );

  app.get("/instances", async (event) => {
    const clientId = await identify(event, identities, headerKey(event));
    return { items: await instances.list(clientId) };
  });

  app.delete("/instances/:instanceId", async (event) => {
    const clientId = await identify(event, identities, headerKey(event));
    const instanceId = instanceIdOf(event);
    const name = instanceNameOf(clientId, instanceId);
    event.context.instanceName = name;
    const removed = await instances.remove(name, { purge: purgeOf(event) });
    if (!removed) throw apiError(404, "not_found", `You have no instance "${instanceId}".`);
    return { name, deleted: true, workspace: removed.workspace };
  });
}

export async function getInstance(
  event: H3Event,
  config: HandlerConfig,
  instances: Instances,
  identities: ClientIdentities,
  apiKey: string | null | undefined,
): Promise<InstanceBody> {
  const clientId = await identify(event, identities, apiKey);
  const instanceId = instanceIdOf(event);
  const waitMs = waitOf(event, config.readyWaitMs);
  event.context.instanceName = instanceNameOf(clientId, instanceId);
  const body = await instances.ensure(clientId, instanceId, waitMs);
  if (body.status !== "ready") {
    event.res.status = 202;
    event.res.headers.set("retry-after", String(STARTING_RETRY_AFTER_SECONDS));
  }
  return body;
}

/** The caller's client id, from its key or its platform token (CLIENT_AUTH). */
export async function identify(
  event: H3Event,
  identities: ClientIdentities,
  apiKey: string | null | undefined,
): Promise<string> {
  const clientId = await identities.clientIdOf({
    apiKey,
    authorization: event.req.headers.get("authorization"),
  });
  event.context.clientId = clientId;
  return clientId;
}

export const headerKey = (event: H3Event): string | null => event.req.headers.get("x-api-key");

export function pathKey(event: H3Event): string | undefined {
  const raw = getRouterParam(event, "apiKey");
  try {
    return raw === undefined ? undefined : decodeURIComponent(raw);
  } catch {
    throw apiError(
      400,
      "invalid_api_key",
      "The API key in the path is not valid percent-encoding.",
    );
  }
}

export function instanceIdOf(event: H3Event): string {
  const instanceId = getRouterParam(event, "instanceId") ?? "";
  if (!INSTANCE_ID_PATTERN.test(instanceId)) {
    throw apiError(
      400,
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
    throw apiError(
      400,
      "invalid_wait",
      `wait is a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`,
    );
  }
  return Math.round(Number(wait) * 1000);
}
