import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadYaml } from "@kubernetes/client-node";

// The fleet's monitoring as the tests read it: the alerting rules, their unit tests and the
// dashboard's queries (k8s/monitoring/).

export const ROOT = resolve(import.meta.dirname, "../..");
export const MONITORING = resolve(ROOT, "k8s/monitoring");

/** Debian's `prometheus` package ships both; `.ci/run` installs it. */
export const promtool = spawnSync("promtool", ["--version"]).status === 0;
export const prometheus = spawnSync("prometheus", ["--version"]).status === 0;
if (!promtool || !prometheus) {
  console.warn(
    "SKIP monitoring tests: promtool and prometheus not found (apt-get install -y prometheus)",
  );
}

/**
 * Metrics the alerts and the dashboard read from kube-state-metrics (v2), which they need
 * beside the handler's own: everything else they name must be exported by the handler.
 */
export const KUBE_STATE_METRICS = new Set([
  "kube_pod_status_phase",
  "kube_resourcequota",
  "kube_cronjob_status_last_successful_time",
  "kube_cronjob_info",
  "kube_job_failed",
  "kube_job_status_succeeded",
]);
/** The warm pool's gauge, exported once POOL_SIZE > 0 (issue 19), and Prometheus' own `up`. */
export const ELSEWHERE = new Set(["fleet_pool_members", "up"]);

export interface Rule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
export interface RuleGroups {
  groups: { name: string; rules: Rule[] }[];
}
export interface AlertTests {
  tests: {
    name: string;
    alert_rule_test?: {
      alertname: string;
      exp_alerts: { exp_labels?: Record<string, string>; exp_annotations?: object }[];
    }[];
  }[];
}
export interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

export const rules = (
  loadYaml(readFileSync(join(MONITORING, "prometheusrule.yaml"), "utf8")) as {
    spec: RuleGroups;
  }
).spec;
export const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
export const dashboard = JSON.parse(
  readFileSync(join(MONITORING, "grafana-dashboard.json"), "utf8"),
) as Dashboard;
export const queries = dashboard.panels.flatMap((p) =>
  p.targets.map((t) => ({ panel: p.title, expr: t.expr.replaceAll("$namespace", "gptme-fleet") })),
);

export function run(command: string, args: string[], cwd?: string) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/**
 * Metric names a PromQL expression selects. Every selector in the alerts and the dashboard
 * is written with its braces (`name{...}`, `name{}`), which this relies on and checks: an
 * expression that selects nothing this way fails the test.
 */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1] as string);
}
