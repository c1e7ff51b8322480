import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { ReloadObserver } from "../shared/config/reloading-file.js";
import { type KubeObserver, KubeUnavailableError } from "../shared/kube/client.js";
import { fleetVersion } from "../shared/version.js";
import type { InstanceEvents } from "./instances/deps.js";
import type { PoolEvents } from "./pool/warm-pool.js";
import { ReaperMetrics } from "./reaper-metrics.js";
import { RequestMetrics } from "./request-metrics.js";

/** The handler's Prometheus metrics, on a registry of its own (no global state). */
export class Metrics {
  readonly registry = new Registry();

  /** Requests answered and their durations, by route (kept by hand: see RequestMetrics). */
  readonly requests = new RequestMetrics(this.registry);

  readonly instancesCreated: Counter<"plan"> = new Counter({
    name: "fleet_instances_created_total",
    help: "Instances (ClientPods) created, by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
    collect: () => this.seriesForPlans(this.instancesCreated),
  });

  readonly instancesReplaced: Counter<"plan"> = new Counter({
    name: "fleet_instances_replaced_total",
    help: "Pods replaced because they had ended or were left over from an earlier ClientPod, by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
    collect: () => this.seriesForPlans(this.instancesReplaced),
  });

  readonly instancesDeleted: Counter<"plan"> = new Counter({
    name: "fleet_instances_deleted_total",
    help: "Instances deleted through the API, by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
    collect: () => this.seriesForPlans(this.instancesDeleted),
  });

  readonly kubeRequests = new Counter({
    name: "fleet_kubernetes_requests_total",
    help: "Kubernetes API calls made, by verb and resource.",
    labelNames: ["verb", "resource"] as const,
    registers: [this.registry],
  });

  readonly kubeErrors = new Counter({
    name: "fleet_kubernetes_errors_total",
    help: "Kubernetes API calls that failed (unreachable, or an unexpected status), by verb and resource.",
    labelNames: ["verb", "resource", "kind"] as const,
    registers: [this.registry],
  });

  readonly credentialsLoaded = new Gauge({
    name: "fleet_credentials_loaded_timestamp_seconds",
    help: "When each credentials file's contents in use were loaded (Unix time), by the variable naming the file.",
    labelNames: ["file"] as const,
    registers: [this.registry],
  });

  readonly credentialsEntries = new Gauge({
    name: "fleet_credentials_entries",
    help: "How many entries (keys, tokens) each credentials file's contents in use hold.",
    labelNames: ["file"] as const,
    registers: [this.registry],
  });

  readonly credentialsReloadErrors = new Counter({
    name: "fleet_credentials_reload_errors_total",
    help: "Times a credentials file could not be read or was malformed (its last good contents stayed in use).",
    labelNames: ["file"] as const,
    registers: [this.registry],
  });

  readonly signinFailures = new Counter({
    name: "fleet_signin_exchange_failures_total",
    help: "Sign-in code exchanges refused, by code (invalid_code, invalid_body, public_url_missing).",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  /** Gateway requests admitted since the last scrape, by credential (see countCredential). */
  private readonly credentialsAdmitted = new Map<string, number>();
  readonly gatewayCredentials: Counter<"kind"> = new Counter({
    name: "fleet_gateway_credentials_total",
    help: "Gateway requests admitted, by the kind of credential presented (instance-token, sse-token).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
    collect: () => {
      for (const [kind, count] of this.credentialsAdmitted)
        this.gatewayCredentials.inc({ kind }, count);
      this.credentialsAdmitted.clear();
    },
  });

  readonly poolClaims = new Counter({
    name: "fleet_pool_claims_total",
    help: "New instances handed out from the warm pool (a started member adopted), by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
  });

  readonly poolMisses = new Counter({
    name: "fleet_pool_misses_total",
    help: "New instances started cold while their plan's pool was on: no member left, or all taken at once, by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
  });

  readonly poolRefills = new Counter({
    name: "fleet_pool_refills_total",
    help: "Pool members this replica started (a replacement for each claim), by plan.",
    labelNames: ["plan"] as const,
    registers: [this.registry],
  });

  readonly poolMembers = new Gauge({
    name: "fleet_pool_members",
    help: "Unclaimed warm-pool members of each plan, as this replica last read them (at its last claim or miss).",
    labelNames: ["plan"] as const,
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: "fleet_build_info",
    help: "The running handler's version (always 1).",
    labelNames: ["version"] as const,
    registers: [this.registry],
  });

  /** The reaper's counters, read from its stats ConfigMap at scrape time. */
  readonly reaper = new ReaperMetrics(this.registry);

  private openExchanges: () => number = () => 0;
  /** Read at each scrape from the gateway (see countOpenExchanges). */
  readonly gatewayOpen: Gauge = new Gauge({
    name: "fleet_gateway_open_exchanges",
    help: "Gateway exchanges open now (requests in flight, event streams, WebSockets).",
    registers: [this.registry],
    collect: () => this.gatewayOpen.set(this.openExchanges()),
  });

  /** `processMetrics` adds Node's default metrics (memory, CPU, event loop lag). */
  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: fleetVersion() }, 1);
  }

  private planNames: () => string[] = () => [];

  /** The plans offered now: every instance counter has a series for each from the start. */
  knowPlans(source: () => string[]): void {
    this.planNames = source;
  }

  /** A series at 0 for each plan offered, so that increase() sees the first instance. */
  private seriesForPlans(counter: Counter<"plan">): void {
    for (const plan of this.planNames()) counter.inc({ plan }, 0);
  }

  /**
   * A gateway request admitted with this kind of credential: added to the counter when it is
   * read, one map update per request here (a labelled inc hashes and checks its labels).
   */
  countCredential(kind: string): void {
    this.credentialsAdmitted.set(kind, (this.credentialsAdmitted.get(kind) ?? 0) + 1);
  }

  /** Where the open exchanges gauge reads from, once the gateway exists. */
  countOpenExchanges(source: () => number): void {
    this.openExchanges = source;
  }

  readonly kubeObserver: KubeObserver = {
    call: (verb, resource) => this.kubeRequests.inc({ verb, resource }),
    error: (verb, resource, error) =>
      this.kubeErrors.inc({
        verb,
        resource,
        kind: error instanceof KubeUnavailableError ? "unavailable" : "status",
      }),
  };

  readonly credentialsObserver: ReloadObserver = {
    loaded: (file, entries, at) => {
      this.credentialsLoaded.set({ file }, at.getTime() / 1000);
      this.credentialsEntries.set({ file }, entries);
      // A series from the start, so that increase() sees the first error.
      this.credentialsReloadErrors.inc({ file }, 0);
    },
    failed: (file) => this.credentialsReloadErrors.inc({ file }),
  };

  readonly poolEvents: PoolEvents = {
    claimed: (plan) => this.poolClaims.inc({ plan }),
    missed: (plan) => this.poolMisses.inc({ plan }),
    refilled: (plan) => this.poolRefills.inc({ plan }),
    members: (plan, count) => this.poolMembers.set({ plan }, count),
  };

  readonly instanceEvents: InstanceEvents = {
    created: (plan) => this.instancesCreated.inc({ plan }),
    replaced: (plan) => this.instancesReplaced.inc({ plan }),
    deleted: (plan) => this.instancesDeleted.inc({ plan }),
  };
}
