import type { H3, H3Event } from "h3";
import type { HandlerConfig } from "../../shared/config/load.js";
import { instanceNameOf } from "../../shared/instance/names.js";
import { retryAfterOf } from "../errors/answer.js";
import { FleetError } from "../errors/fleet-error.js";
import type { ClientIdentities } from "../identity/clients.js";
import type { InstanceBody } from "../instances/body.js";
import type { Instances } from "../instances/instances.js";
import { headerKey, identify, instanceIdOf, pathKey, waitOf } from "./client-request.js";
import { purgeOf } from "./purge.js";

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
    const { clientId } = await identify(event, identities, headerKey(event));
    return { items: await instances.list(clientId) };
  });

  app.delete("/instances/:instanceId", async (event) => {
    const { clientId } = await identify(event, identities, headerKey(event));
    const instanceId = instanceIdOf(event);
    const name = instanceNameOf(clientId, instanceId);
    event.context.instanceName = name;
    const removed = await instances.remove(name, { purge: purgeOf(event) });
    if (!removed) throw new FleetError("not_found", `You have no instance "${instanceId}".`);
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
  const { clientId, plan } = await identify(event, identities, apiKey);
  const instanceId = instanceIdOf(event);
  const waitMs = waitOf(event, config.readyWaitMs);
  event.context.instanceName = instanceNameOf(clientId, instanceId);
  const body = await instances.ensure({ clientId, plan }, instanceId, waitMs);
  if (body.status !== "ready") {
    event.res.status = 202;
    event.res.headers.set("retry-after", String(retryAfterOf("instance_starting")));
  }
  return body;
}
