import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpYaml } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/cluster.js";
import { listenHandler, startHandler, type TestHandler } from "../support/fleet.js";
import {
  alerts,
  ELSEWHERE,
  KUBE_STATE_METRICS,
  metricNames,
  prometheus,
  promtool,
  queries,
} from "../support/monitoring.js";

describe.skipIf(!promtool || !prometheus)("monitoring: the handler's metrics", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-monitoring-"));

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
