import type { Registry } from "prom-client";

/** The request duration histogram's buckets, in seconds. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60];

/** What one method of one route has answered. */
interface Series {
  method: string;
  route: string;
  /** Answers by status. */
  statuses: Map<number, number>;
  /** Durations per bucket (not cumulative); the last counts those past every bound. */
  buckets: number[];
  sum: number;
  count: number;
}

/** A metric as prom-client's Registry writes it: what `get()` returns. */
interface MetricValues {
  name: string;
  help: string;
  type: "counter" | "histogram";
  aggregator: "sum";
  values: { metricName?: string; labels: Record<string, string | number>; value: number }[];
}

/**
 * `fleet_http_requests_total` (by method, route and status) and
 * `fleet_http_request_duration_seconds` (by method and route), counted by hand and written
 * out at scrape time on the handler's registry, line for line as prom-client writes its own.
 * Every answer passes here, the gateway's every proxied request among them, and prom-client's
 * metrics hash and check their labels on each call: without those two calls the gateway
 * spent 6 % less CPU per proxied request (measured, docs/BENCHMARKS.md). Here a request costs
 * three map lookups and a search of 13 bounds.
 */
export class RequestMetrics {
  /** By route, then method: both come from a short fixed list (routes are patterns). */
  private readonly series = new Map<string, Map<string, Series>>();
  /** Written out in the order first seen, as prom-client does: each series, each status. */
  private readonly seriesSeen: Series[] = [];
  private readonly statusesSeen: { series: Series; status: number }[] = [];

  constructor(registry: Registry) {
    // Duck-typed as prom-client's own metrics: a name, `get()`, `reset()`.
    registry.registerMetric(this.metric("counter") as never);
    registry.registerMetric(this.metric("histogram") as never);
  }

  /** One answer: its method, route pattern, status, and how long it took. */
  record(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.series.get(route);
    if (!byMethod) {
      byMethod = new Map();
      this.series.set(route, byMethod);
    }
    let series = byMethod.get(method);
    if (!series) {
      const buckets = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
      series = { method, route, statuses: new Map(), buckets, sum: 0, count: 0 };
      byMethod.set(method, series);
      this.seriesSeen.push(series);
    }
    const answered = series.statuses.get(status);
    if (answered === undefined) this.statusesSeen.push({ series, status });
    series.statuses.set(status, (answered ?? 0) + 1);
    // As prom-client: a duration counts in the first bucket whose bound it does not exceed.
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[bucket] as number)) {
      bucket++;
    }
    series.buckets[bucket] = (series.buckets[bucket] ?? 0) + 1;
    series.sum += seconds;
    series.count += 1;
  }

  private metric(type: "counter" | "histogram") {
    const name =
      type === "counter" ? "fleet_http_requests_total" : "fleet_http_request_duration_seconds";
    const help =
      type === "counter"
        ? "HTTP requests answered, by method, route and status."
        : "Time to answer an HTTP request, by method and route.";
    return {
      name,
      help,
      type,
      aggregator: "sum",
      get: async (): Promise<MetricValues> => ({
        name,
        help,
        type,
        aggregator: "sum",
        values: type === "counter" ? this.counts() : this.durations(name),
      }),
      reset: () => {
        this.series.clear();
        this.seriesSeen.length = 0;
        this.statusesSeen.length = 0;
      },
    };
  }

  private counts(): MetricValues["values"] {
    return this.statusesSeen.map(({ series: { method, route, statuses }, status }) => ({
      labels: { method, route, status },
      value: statuses.get(status) ?? 0,
    }));
  }

  private durations(name: string): MetricValues["values"] {
    const values: MetricValues["values"] = [];
    for (const { method, route, buckets, sum, count } of this.seriesSeen) {
      let cumulative = 0;
      for (const [index, inBucket] of buckets.entries()) {
        cumulative += inBucket;
        const le = DURATION_BUCKETS[index] ?? "+Inf";
        values.push({
          metricName: `${name}_bucket`,
          labels: { le, method, route },
          value: cumulative,
        });
      }
      values.push({ metricName: `${name}_sum`, labels: { method, route }, value: sum });
      values.push({ metricName: `${name}_count`, labels: { method, route }, value: count });
    }
    return values;
  }
}
