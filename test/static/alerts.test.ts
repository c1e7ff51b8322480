import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpYaml, loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  type AlertTests,
  alerts,
  MONITORING,
  promtool,
  queries,
  ROOT,
  rules,
  run,
} from "../support/monitoring.js";

describe.skipIf(!promtool)("monitoring: alerts and dashboard, checked offline", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-monitoring-"));

  it("keeps the plain rules file and the PrometheusRule identical, and passes promtool check rules", () => {
    const plain = loadYaml(readFileSync(join(MONITORING, "fleet-alerts.yml"), "utf8"));
    expect(plain).toEqual(rules);
    const check = run("promtool", ["check", "rules", join(MONITORING, "fleet-alerts.yml")]);
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

  it("passes its promtool unit tests as an operator runs them, each alert firing in at least one", () => {
    const tests = loadYaml(
      readFileSync(join(MONITORING, "alerts.test.yaml"), "utf8"),
    ) as AlertTests;
    const fired = new Set<string>();
    for (const test of tests.tests) {
      for (const case_ of test.alert_rule_test ?? []) {
        expect(
          alerts.find((a) => a.alert === case_.alertname),
          case_.alertname,
        ).toBeDefined();
        for (const expected of case_.exp_alerts) {
          fired.add(case_.alertname);
          // Written out, so that plain promtool checks what on-call will read.
          expect(expected.exp_annotations, case_.alertname).toBeDefined();
        }
      }
    }
    expect([...fired].sort()).toEqual(alerts.map((a) => a.alert).sort());
    // Plain promtool, in no directory of its own: the test file names its rules file.
    const result = run("promtool", ["test", "rules", join(MONITORING, "alerts.test.yaml")], ROOT);
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
});
