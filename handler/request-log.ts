import type { Logger } from "../shared/log.js";
import type { Metrics } from "./metrics.js";

/** What is recorded of every answered request: a route pattern, never a URL (it can hold a key). */
export interface RequestRecord {
  method: string;
  route: string;
  status: number;
  seconds: number;
  clientId?: string;
  instance?: string;
  /** Which kind of credential a gateway request was admitted with (never the credential). */
  credential?: "instance-token" | "sse-token";
}

/** One log line and the request metrics, for the routes and the gateway alike. */
export function recordRequest(record: RequestRecord, log: Logger, metrics: Metrics): void {
  const { method, route, status, seconds } = record;
  metrics.requests.inc({ method, route, status });
  metrics.requestDuration.observe({ method, route }, seconds);
  log.info(
    {
      method,
      route,
      status,
      durationMs: Math.round(seconds * 1000 * 10) / 10,
      clientId: record.clientId,
      instance: record.instance,
      credential: record.credential,
    },
    "request",
  );
}
