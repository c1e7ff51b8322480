import { H3, type H3Event, type HTTPError } from "h3";
import type { TokenKeyring } from "../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../shared/config/load.js";
import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import { corsHeaders, isPreflight, preflightHeaders } from "./cors.js";
import { answerError } from "./errors/answer.js";
import type { ClientIdentities } from "./identity/clients.js";
import type { Instances } from "./instances/instances.js";
import type { Metrics } from "./metrics.js";
import { recordRequest } from "./request-log.js";
import { adminRoutes } from "./routes/admin.js";
import { adminRolloutRoutes } from "./routes/admin-rollout.js";
import { adminWorkspaceRoutes } from "./routes/admin-workspaces.js";
import { instanceRoutes } from "./routes/instances.js";
import { opsRoutes, Readiness } from "./routes/ops.js";
import { previewRoutes } from "./routes/previews.js";
import { signinRoutes } from "./routes/signin.js";
import type { SigninCodes } from "./signin/code-store.js";

declare module "h3" {
  interface H3EventContext {
    /** Set once the caller is identified, for the request log line. */
    clientId?: string;
    /** The instance a request is about, for the request log line. */
    instanceName?: string;
    startedAt?: number;
  }
}

export interface AppDeps {
  config: HandlerConfig;
  kube: Kube;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
  /** Aborted when the process starts shutting down. */
  shutdown?: AbortSignal;
}

/** What the routes share with the gateway. */
export interface AppParts {
  keyring: TokenKeyring;
  instances: Instances;
  identities: ClientIdentities;
  codes: SigninCodes;
}

/** The handler's HTTP application: routes and their wiring, no environment, no listening. */
export function createApp(deps: AppDeps, parts: AppParts): H3 {
  const { instances, identities } = parts;
  const { config, kube, log, metrics } = deps;

  const app = new H3({
    // Unhandled errors are logged below, without h3's console output.
    silent: true,
    onRequest: (event) => {
      event.context.startedAt = performance.now();
    },
    onError: (error, event) => toErrorResponse(error, event, log),
    onResponse: (response, event) => record(response, event, log, metrics),
  });

  // Browsers on the allowed origins may call the client routes.
  app.use((event) => {
    const origin = event.req.headers.get("origin");
    if (isPreflight(event.req.method, event.req.headers)) {
      return new Response(null, {
        status: 204,
        headers: preflightHeaders(origin, config.gateway.corsOrigins),
      });
    }
    for (const [name, value] of Object.entries(corsHeaders(origin, config.gateway.corsOrigins))) {
      event.res.headers.set(name, value);
    }
  });
  instanceRoutes(app, config, instances, identities);
  signinRoutes(app, { ...deps, ...parts, now: deps.now ?? (() => new Date()) });
  adminRoutes(app, config, kube, instances);
  adminRolloutRoutes(app, config, kube);
  adminWorkspaceRoutes(app, config, kube);
  opsRoutes(app, new Readiness(kube), metrics);
  previewRoutes(app, config, kube, parts.codes, identities);
  return app;
}

const CORS_RESPONSE_HEADERS = [
  "vary",
  "access-control-allow-origin",
  "access-control-allow-credentials",
];

function toErrorResponse(error: HTTPError, event: H3Event, log: Logger): Response {
  const { status, headers, body } = answerError(error, log, routeOf(event));
  const answer = new Headers(headers);
  // An error answer replaces the response being built: keep its CORS headers, so a browser
  // can read the error.
  for (const name of CORS_RESPONSE_HEADERS) {
    const value = event.res.headers.get(name);
    if (value) answer.set(name, value);
  }
  answer.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers: answer });
}

function record(response: Response, event: H3Event, log: Logger, metrics: Metrics): void {
  const seconds = (performance.now() - (event.context.startedAt ?? performance.now())) / 1000;
  recordRequest(
    {
      method: event.req.method,
      route: routeOf(event),
      status: response.status,
      seconds,
      clientId: event.context.clientId,
      instance: event.context.instanceName,
    },
    log,
    metrics,
  );
}

function routeOf(event: H3Event): string {
  return event.context.matchedRoute?.route ?? "unmatched";
}
