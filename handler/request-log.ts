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

/** One log line and the request metrics, for the routes. */
export function recordRequest(record: RequestRecord, log: Logger, metrics: Metrics): void {
  countRequest(record, metrics);
  logRequest(record, log);
}

function countRequest({ method, route, status, seconds }: RequestRecord, metrics: Metrics): void {
  metrics.requests.record(method, route, status, seconds);
}

function logRequest(record: RequestRecord, log: Logger): void {
  const { method, route, status, seconds } = record;
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

/** How often the summary lines of proxied requests are written. */
export const SUMMARY_INTERVAL_MS = 10_000;
/** An exchange open this long (an event stream, a slow answer) gets a line of its own. */
export const LONG_EXCHANGE_SECONDS = 1;
/** Bounds the instances summarised at once: past it, the summary is written early. */
const MAX_SUMMARIZED = 10_000;

interface Summary {
  route: string;
  clientId: string | undefined;
  requests: number;
  /**
   * Requests by status. A Map, not an object: an object given the key 200 is given an
   * elements array of 201 slots (2.5 KB), per summary, 10,000 of them at once at most.
   */
  statuses: Map<number, number>;
  totalMs: number;
  maxMs: number;
}

/**
 * The request log of the proxied routes (the instance gateway, the preview hosts), where a
 * line per request would cost more CPU than the proxying itself. Every request is counted in
 * the request metrics. A request gets a line of its own (`"msg": "request"`, as the routes')
 * when someone may need to find it: an answer of 400 or more (every refusal and every error),
 * an exchange open a second or more (event streams, slow answers, WebSockets), or one
 * admitted with an event-stream token. The others are summarised: one line per instance and
 * route per `SUMMARY_INTERVAL_MS` (`"msg": "requests"`: how many, by status, mean and longest
 * duration), and at shutdown.
 */
export class ProxiedRequestLog {
  private readonly summaries = new Map<string, Summary>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    intervalMs = SUMMARY_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  record(record: RequestRecord): void {
    countRequest(record, this.metrics);
    if (
      record.status >= 400 ||
      record.seconds >= LONG_EXCHANGE_SECONDS ||
      record.credential === "sse-token" ||
      record.instance === undefined
    ) {
      logRequest(record, this.log);
      return;
    }
    const key = `${record.route} ${record.instance}`;
    let summary = this.summaries.get(key);
    if (!summary) {
      if (this.summaries.size >= MAX_SUMMARIZED) this.flush();
      summary = {
        route: record.route,
        clientId: record.clientId,
        requests: 0,
        statuses: new Map(),
        totalMs: 0,
        maxMs: 0,
      };
      this.summaries.set(key, summary);
    }
    const ms = record.seconds * 1000;
    summary.requests += 1;
    summary.statuses.set(record.status, (summary.statuses.get(record.status) ?? 0) + 1);
    summary.totalMs += ms;
    if (ms > summary.maxMs) summary.maxMs = ms;
  }

  /** Writes the summary lines of what was recorded since the last ones. */
  flush(): void {
    for (const [key, s] of this.summaries) {
      this.log.info(
        {
          route: s.route,
          instance: key.slice(s.route.length + 1),
          clientId: s.clientId,
          requests: s.requests,
          statuses: Object.fromEntries(s.statuses),
          durationMsMean: Math.round((s.totalMs / s.requests) * 10) / 10,
          durationMsMax: Math.round(s.maxMs * 10) / 10,
        },
        "requests",
      );
    }
    this.summaries.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
