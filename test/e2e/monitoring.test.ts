import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpYaml } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, handlerPods, onPodNetwork } from "./support/fleet.js";

const prometheus = spawnSync("prometheus", ["--version"]).status === 0;
if (!prometheus) {
  console.warn("SKIP e2e monitoring: prometheus not found (apt-get install -y prometheus)");
}

// A real Prometheus on this machine scrapes the handler pods on the real node (their pod IPs
// on the node's bridge, as a PodMonitor would have it scrape them) and the test reads a fleet
// metric back through its query API.
describe.skipIf(!prometheus)("Prometheus scrapes the handler pods on the real node", () => {
  let prom: ChildProcess;
  let url: string;
  let targets: string[];
  const query = async (expr: string) => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as {
      status: string;
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
  };

  beforeAll(async () => {
    const pods = await handlerPods();
    targets = pods.map((p) => `${p.status?.podIP}:8080`);
    expect(pods.length).toBeGreaterThanOrEqual(2);
    for (const pod of pods) expect(onPodNetwork(pod.status?.podIP)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "fleet-e2e-prometheus-"));
    writeFileSync(
      join(dir, "prometheus.yml"),
      dumpYaml({
        global: { scrape_interval: "1s" },
        scrape_configs: [
          {
            job_name: "fleet-handler",
            static_configs: [{ targets, labels: { namespace: "gptme-fleet" } }],
          },
        ],
      }),
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
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
        return (up?.data.result.length ?? 0) === targets.length ? true : undefined;
      },
      "Prometheus to scrape every handler pod",
      90_000,
    );
  }, 120_000);

  afterAll(() => {
    prom?.kill("SIGTERM");
  });

  it("reads each handler pod's fleet_build_info back through the query API", async () => {
    const info = await query("fleet_build_info");
    expect(info.status).toBe("success");
    expect(info.data.result.map((r) => r.metric.instance).sort()).toEqual([...targets].sort());
    for (const series of info.data.result) {
      expect(series.metric.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(series.value[1]).toBe("1");
    }
    const requests = await query("sum(fleet_http_requests_total)");
    expect(Number(requests.data.result[0]?.value[1])).toBeGreaterThan(0);
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
