import { H3, type H3Event, type HTTPError } from "h3";
import type { HandlerConfig } from "../shared/config.js";
import { type Kube, KubeUnavailableError } from "../shared/kube.js";
import type { Logger } from "../shared/log.js";
import { apiError, errorBody } from "./errors.js";
import { Instances } from "./instances.js";
import type { Metrics } from "./metrics.js";
import { adminRoutes } from "./routes/admin.js";
import { instanceRoutes } from "./routes/instances.js";
import { opsRoutes, Readiness } from "./routes/ops.js";

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

/** The handler's HTTP application: routes and their wiring, no environment, no listening. */
export function createApp(deps: AppDeps): H3 {
  const { config, kube, log, metrics } = deps;
  const now = deps.now ?? (() => new Date());
  const instances = new Instances({
    kube,
    config,
    now,
    events: metrics.instanceEvents,
    shutdown: deps.shutdown,
  });

  const app = new H3({
    // Unhandled errors are logged below, without h3's console output.
    silent: true,
    onRequest: (event) => {
      event.context.startedAt = performance.now();
    },
    onError: (error, event) => toErrorResponse(error, event, log),
    onResponse: (response, event) => record(response, event, log, metrics),
  });

  instanceRoutes(app, config, instances);
  adminRoutes(app, config, kube, instances);
  opsRoutes(app, new Readiness(kube), metrics);
  return app;
}

function toErrorResponse(error: HTTPError, event: H3Event, log: Logger): Response {
  const cause = error.cause;
  let answer = error;
  if (cause instanceof KubeUnavailableError) {
    answer = apiError(
      503,
      "kubernetes_unavailable",
      "The Kubernetes API server is unavailable; try again shortly.",
      {
        "retry-after": "5",
      },
    );
  } else if (error.unhandled) {
    // Log the cause's message only: an error object can carry request data (URLs, headers).
    log.error(
      {
        err: { name: (cause as Error)?.name, message: (cause as Error)?.message },
        route: routeOf(event),
      },
      "request failed",
    );
  }
  const body = errorBody(answer);
  const headers = new Headers(answer.headers);
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status: body.statusCode, headers });
}

function record(response: Response, event: H3Event, log: Logger, metrics: Metrics): void {
  const route = routeOf(event);
  const method = event.req.method;
  const seconds = (performance.now() - (event.context.startedAt ?? performance.now())) / 1000;
  metrics.requests.inc({ method, route, status: response.status });
  metrics.requestDuration.observe({ method, route }, seconds);
  // The route's pattern, never the URL: a URL can hold an API key.
  log.info(
    {
      method,
      route,
      status: response.status,
      durationMs: Math.round(seconds * 1000 * 10) / 10,
      clientId: event.context.clientId,
      instance: event.context.instanceName,
    },
    "request",
  );
}

function routeOf(event: H3Event): string {
  return event.context.matchedRoute?.route ?? "unmatched";
}
