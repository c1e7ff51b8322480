import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { dumpYaml, loadYaml } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/cluster.js";
import { listenHandler, startHandler, type TestHandler } from "../support/fleet.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MONITORING = resolve(ROOT, "k8s/monitoring");

/** Debian's `prometheus` package ships both; `.ci/run` installs it. */
const promtool = spawnSync("promtool", ["--version"]).status === 0;
const prometheus = spawnSync("prometheus", ["--version"]).status === 0;
if (!promtool || !prometheus) {
  console.warn(
    "SKIP monitoring tests: promtool and prometheus not found (apt-get install -y prometheus)",
  );
}

/**
 * Metrics the alerts and the dashboard read from kube-state-metrics (v2), which they need
 * beside the handler's own: everything else they name must be exported by the handler.
 */
const KUBE_STATE_METRICS = new Set([
  "kube_pod_status_phase",
  "kube_resourcequota",
  "kube_cronjob_status_last_successful_time",
  "kube_cronjob_info",
  "kube_job_failed",
  "kube_job_status_succeeded",
]);
/** The warm pool's gauge, exported once POOL_SIZE > 0 (issue 19), and Prometheus' own `up`. */
const ELSEWHERE = new Set(["fleet_pool_members", "up"]);

interface Rule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
interface RuleGroups {
  groups: { name: string; rules: Rule[] }[];
}
interface AlertTests {
  tests: {
    name: string;
    alert_rule_test?: {
      alertname: string;
      exp_alerts: { exp_labels?: Record<string, string>; exp_annotations?: object }[];
    }[];
  }[];
}
interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

const rules = (
  loadYaml(readFileSync(join(MONITORING, "prometheusrule.yaml"), "utf8")) as {
    spec: RuleGroups;
  }
).spec;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
const dashboard = JSON.parse(
  readFileSync(join(MONITORING, "grafana-dashboard.json"), "utf8"),
) as Dashboard;
const queries = dashboard.panels.flatMap((p) =>
  p.targets.map((t) => ({ panel: p.title, expr: t.expr.replaceAll("$namespace", "gptme-fleet") })),
);

function run(command: string, args: string[], cwd?: string) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/**
 * Metric names a PromQL expression selects. Every selector in the alerts and the dashboard
 * is written with its braces (`name{...}`, `name{}`), which this relies on and checks: an
 * expression that selects nothing this way fails the test.
 */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1] as string);
}

describe.skipIf(!promtool || !prometheus)("monitoring: alerts and dashboard", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-monitoring-"));

  it("passes promtool check rules", () => {
    writeFileSync(join(dir, "fleet-alerts.yml"), dumpYaml(rules));
    const check = run("promtool", ["check", "rules", join(dir, "fleet-alerts.yml")]);
    expect(check.output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(check.status).toBe(0);
  });

  it("every alert tells on-call what it is and what to do", () => {
    for (const alert of alerts) {
      expect(alert.annotations?.summary?.length ?? 0, alert.alert).toBeGreaterThan(20);
      expect(alert.annotations?.description?.length ?? 0, alert.alert).toBeGreaterThan(80);
      // The unit tests expect annotations as written: only $labels may be templated.
      const templated = JSON.stringify(alert.annotations).match(/\{\{[^}]*\}\}/g) ?? [];
      for (const t of templated) expect(t).toMatch(/^\{\{ \$labels\.[a-z_]+ \}\}$/);
    }
  });

  it("passes its promtool unit tests, each alert firing in at least one", () => {
    const tests = loadYaml(
      readFileSync(join(MONITORING, "alerts.test.yaml"), "utf8"),
    ) as AlertTests;
    const fired = new Set<string>();
    for (const test of tests.tests) {
      for (const case_ of test.alert_rule_test ?? []) {
        const rule = alerts.find((a) => a.alert === case_.alertname);
        expect(rule, case_.alertname).toBeDefined();
        for (const expected of case_.exp_alerts) {
          fired.add(case_.alertname);
          const labels = expected.exp_labels ?? {};
          expected.exp_annotations = Object.fromEntries(
            Object.entries(rule?.annotations ?? {}).map(([key, text]) => [
              key,
              text.replace(
                /\{\{ \$labels\.([a-z_]+) \}\}/g,
                (_, name: string) => labels[name] ?? "",
              ),
            ]),
          );
        }
      }
    }
    expect([...fired].sort()).toEqual(alerts.map((a) => a.alert).sort());
    writeFileSync(join(dir, "fleet-alerts.yml"), dumpYaml(rules));
    writeFileSync(join(dir, "alerts.test.yaml"), dumpYaml(tests));
    const result = run("promtool", ["test", "rules", "alerts.test.yaml"], dir);
    expect(result.output).toContain("SUCCESS");
    expect(result.status, result.output).toBe(0);
  });

  it("dashboard queries all parse (as rules promtool checks)", () => {
    const asRules = {
      groups: [
        {
          name: "dashboard",
          rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })),
        },
      ],
    };
    writeFileSync(join(dir, "dashboard.yml"), dumpYaml(asRules));
    const check = run("promtool", ["check", "rules", join(dir, "dashboard.yml")]);
    expect(check.output).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(check.status).toBe(0);
  });

  describe("against a running handler and a real Prometheus scraping it", () => {
    let handler: TestHandler;
    let http: { url: string; close(): Promise<void> };
    let prom: ChildProcess;
    let promUrl: string;
    const query = async (expr: string) => {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (await res.json()) as {
        status: string;
        error?: string;
        data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
    };

    beforeAll(async () => {
      handler = startHandler("default");
      http = await listenHandler(handler);
      // Some traffic, so that labelled series exist.
      await fetch(`${http.url}/healthz`);
      await fetch(`${http.url}/instances/x`);
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      const target = new URL(http.url).host;
      writeFileSync(
        join(dir, "prometheus.yml"),
        dumpYaml({
          global: { scrape_interval: "1s", evaluation_interval: "1s" },
          scrape_configs: [
            {
              job_name: "fleet-handler",
              static_configs: [{ targets: [target], labels: { namespace: "gptme-fleet" } }],
            },
          ],
        }),
      );
      prom = spawn(
        "prometheus",
        [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: "ignore" },
      );
      await eventually(
        async () => {
          const up = await query('up{job="fleet-handler"} == 1').catch(() => undefined);
          return up?.data?.result.length ? true : undefined;
        },
        "Prometheus to scrape the handler",
        60_000,
        500,
      );
    }, 90_000);

    afterAll(async () => {
      prom?.kill("SIGTERM");
      await http?.close();
      handler?.close();
    });

    it("reads a fleet metric back through Prometheus' query API", async () => {
      const info = await query("fleet_build_info");
      expect(info.data?.result).toEqual([
        expect.objectContaining({
          metric: expect.objectContaining({ __name__: "fleet_build_info", version: "0.1.0" }),
          value: [expect.any(Number), "1"],
        }),
      ]);
    });

    it("dashboard queries name only metrics the handler exports (or kube-state-metrics')", async () => {
      const exposition = await (await fetch(`${http.url}/metrics`)).text();
      const exported = new Set(
        [...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
          type === "histogram"
            ? [`${name}_bucket`, `${name}_sum`, `${name}_count`]
            : [name as string],
        ),
      );
      const allExprs = [...queries.map((q) => q.expr), ...alerts.map((a) => a.expr)];
      for (const expr of allExprs) {
        const names = metricNames(expr);
        expect(names.length, expr).toBeGreaterThan(0);
        for (const name of names) {
          const known = exported.has(name) || KUBE_STATE_METRICS.has(name) || ELSEWHERE.has(name);
          expect(known, `${name} in ${expr}`).toBe(true);
        }
      }
      // And each query is one Prometheus evaluates.
      for (const q of queries) {
        const answer = await query(q.expr);
        expect(answer.status, `${q.panel}: ${answer.error}`).toBe("success");
      }
    });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}
