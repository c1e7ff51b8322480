import { getRouterParam, type H3, type H3Event } from "h3";
import type { HandlerConfig } from "../../shared/config/load.js";
import { instanceNameOf } from "../../shared/instance/names.js";
import { recordOf } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";
import type { ClientIdentities } from "../identity/clients.js";
import { isPreviewPort, MAX_PREVIEW_PORT, MIN_PREVIEW_PORT } from "../previews/host.js";
import { signInLink } from "../previews/link.js";
import type { SigninCodes } from "../signin/code-store.js";
import { headerKey, identify, instanceIdOf, pathKey } from "./client-request.js";

/** What a client gets to open a preview: a one-time link, and when it stops working. */
export interface PreviewLink {
  url: string;
  expiresAt: string;
}

/**
 * `POST /instances/:instanceId/previews/:port`: a one-time sign-in link to the instance's
 * preview of `port`, for its owner (the client routes' identity) to open in a browser.
 */
export function previewRoutes(
  app: H3,
  config: HandlerConfig,
  kube: Kube,
  codes: SigninCodes,
  identities: ClientIdentities,
): void {
  const link = { config, kube, codes, identities };
  app.post("/instances/:instanceId/previews/:port", (event) =>
    previewLink(event, link, headerKey(event)),
  );
  // For gateways that forward the public path unchanged: the key is the path segment.
  app.post("/api/v1/:apiKey/instances/:instanceId/previews/:port", (event) =>
    previewLink(event, link, pathKey(event)),
  );
}

interface LinkDeps {
  config: HandlerConfig;
  kube: Kube;
  codes: SigninCodes;
  identities: ClientIdentities;
}

async function previewLink(
  event: H3Event,
  { config, kube, codes, identities }: LinkDeps,
  apiKey: string | null | undefined,
): Promise<PreviewLink> {
  const { clientId } = await identify(event, identities, apiKey);
  const instanceId = instanceIdOf(event);
  const port = portOf(event);
  const previews = config.previews;
  if (!previews) {
    throw new FleetError("previews_disabled", "Previews are off here (PREVIEW_DOMAIN is not set).");
  }
  const name = instanceNameOf(clientId, instanceId);
  event.context.instanceName = name;
  // The instance must exist (a preview never creates one); the code is bound to its uid.
  const clientPod = await kube.clientPods.get(name);
  if (!clientPod || clientPod.metadata.deletionTimestamp) {
    throw new FleetError("not_found", `You have no instance "${instanceId}".`);
  }
  const record = recordOf(clientPod);
  const { code, expiresAt } = await codes.mint(
    { name, uid: record.uid, clientId, instanceId },
    `preview:${port}`,
    config.signin.loginCodeTtlMs,
  );
  // The answer holds a live code: no cache keeps it.
  event.res.headers.set("cache-control", "no-store");
  return {
    url: signInLink(code, port, name, previews.domain, config.gateway.publicUrl),
    expiresAt: expiresAt.toISOString(),
  };
}

function portOf(event: H3Event): number {
  const text = getRouterParam(event, "port") ?? "";
  const port = /^[1-9]\d{0,4}$/.test(text) ? Number(text) : Number.NaN;
  if (!isPreviewPort(port)) {
    throw new FleetError(
      "invalid_port",
      `A preview port is a number from ${MIN_PREVIEW_PORT} to ${MAX_PREVIEW_PORT}.`,
    );
  }
  return port;
}
