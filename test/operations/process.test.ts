import { createServer } from "node:net";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigVia,
} from "../support/cluster.js";
import { bareTemplate, installTemplate } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { FaultyLink, freePort, spawnHandler, waitHealthy } from "../support/process.js";

let podHealth: PodHealth | undefined;

function apiServer(): { host: string; port: number } {
  const url = new URL(adminKubeConfig().getCurrentCluster()?.server ?? "");
  return { host: url.hostname, port: Number(url.port) };
}

describe("the handler as a process", () => {
  let namespace: string;

  beforeAll(async () => {
    namespace = await createTestNamespace("process");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    // Pods from this template are never scheduled (no node matches), so they stay starting.
    const stuck = bareTemplate("never-ready");
    if (stuck.template?.spec)
      stuck.template.spec.nodeSelector = { "gptme.ai/no-such-node": "true" };
    await installTemplate(namespace, stuck);
  });

  afterAll(async () => {
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("exits non-zero, naming HTTP_PORT, when its port is taken (never moves to another)", async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(port, r));
    try {
      const handler = spawnHandler({
        KUBECONFIG: kubeconfigVia(apiServer().port),
        NAMESPACE: namespace,
        HTTP_PORT: String(port),
      });
      expect(await handler.exited).toBe(1);
      expect(handler.stderr.join("\n")).toContain(`HTTP_PORT ${port}`);
      for (const line of handler.stdout) expect(() => JSON.parse(line)).not.toThrow();
    } finally {
      squatter.close();
    }
  });

  it("exits 2 with one line naming the variable on bad configuration", async () => {
    const handler = spawnHandler({
      KUBECONFIG: kubeconfigVia(apiServer().port),
      MAX_INSTANCES: "lots",
      HTTP_PORT: "1",
    });
    expect(await handler.exited).toBe(2);
    expect(handler.stderr).toHaveLength(1);
    expect(handler.stderr[0]).toMatch(/MAX_INSTANCES/);
    expect(handler.stdout).toEqual([]);
  });

  it("is closed by default: without API_KEYS_FILE it exits 2 saying what to set", async () => {
    const handler = spawnHandler({
      KUBECONFIG: kubeconfigVia(apiServer().port),
      // Empty is unset: the default, keys.
      CLIENT_AUTH: "",
      HTTP_PORT: "1",
    });
    expect(await handler.exited).toBe(2);
    expect(handler.stderr).toHaveLength(1);
    expect(handler.stderr[0]).toMatch(
      /^fleet-handler: invalid configuration: API_KEYS_FILE: required with CLIENT_AUTH=keys \(the default\): set API_KEYS_FILE, or CLIENT_AUTH=jwt .*CLIENT_AUTH=open/,
    );
    expect(handler.stdout).toEqual([]);
  });

  it("starts without the API server, reports not ready, and recovers without a restart", async () => {
    const link = new FaultyLink(await freePort(), apiServer());
    const port = await freePort();
    const handler = spawnHandler({
      KUBECONFIG: kubeconfigVia(link.port),
      NAMESPACE: namespace,
      HTTP_PORT: String(port),
    });
    try {
      await waitHealthy(handler);
      expect((await fetch(`${handler.url}/readyz`)).status).toBe(503);
      const started = Date.now();
      const res = await fetch(`${handler.url}/instances/offline?wait=5`, {
        headers: { "x-api-key": "process-key-000001" },
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { code: string }).code).toBe("kubernetes_unavailable");
      expect(Date.now() - started).toBeLessThan(3_000);

      await link.up();
      await new Promise((r) => setTimeout(r, 2_100)); // the readiness answer is cached for 2 s
      expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
      const ok = await fetch(`${handler.url}/instances/online?wait=30`, {
        headers: { "x-api-key": "process-key-000001" },
      });
      expect(ok.status).toBe(200);

      // The API server goes away mid-life: fast 503s, no crash, no hung request; then back.
      await link.down();
      await new Promise((r) => setTimeout(r, 2_100));
      expect((await fetch(`${handler.url}/readyz`)).status).toBe(503);
      const during = await fetch(`${handler.url}/instances/online`, {
        headers: { "x-api-key": "process-key-000001" },
      });
      expect(during.status).toBe(503);
      await link.up();
      await new Promise((r) => setTimeout(r, 2_100));
      expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
      const after = await fetch(`${handler.url}/instances/online`, {
        headers: { "x-api-key": "process-key-000001" },
      });
      expect(after.status).toBe(200);
      expect(handler.proc.exitCode).toBeNull();
    } finally {
      handler.proc.kill("SIGKILL");
      await link.down();
    }
  });

  it("on SIGTERM finishes the requests in flight, then exits 0", async () => {
    const port = await freePort();
    const handler = spawnHandler({
      KUBECONFIG: kubeconfigVia(apiServer().port),
      NAMESPACE: namespace,
      HTTP_PORT: String(port),
      POD_TEMPLATE: "never-ready",
      MAX_INSTANCES_PER_CLIENT: "100",
    });
    await waitHealthy(handler);
    // 50 requests for pods that never become ready, each willing to wait 30 s.
    const inFlight = Array.from({ length: 50 }, (_, i) =>
      fetch(`${handler.url}/instances/slow-${i}?wait=30`, {
        headers: { "x-api-key": "sigterm-key-000001" },
      }).then(
        (r) => r.status,
        () => 0,
      ),
    );
    // Let every request reach its readiness wait.
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const deadline = Date.now() + 20_000;
    while (
      (await core.listNamespacedPod({ namespace })).items.length < 50 &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const signalled = Date.now();
    handler.proc.kill("SIGTERM");
    const statuses = await Promise.all(inFlight);
    expect(statuses).toEqual(Array(50).fill(202));
    expect(await handler.exited).toBe(0);
    // Waits end early on shutdown, so draining takes well under the 20 s bound.
    expect(Date.now() - signalled).toBeLessThan(10_000);
    // After the signal nothing new is accepted.
    await expect(fetch(`${handler.url}/healthz`)).rejects.toThrow();
    const lines = handler.stdout.map((l) => JSON.parse(l));
    expect(lines.some((l) => l.msg === "draining")).toBe(true);
    expect(lines.at(-1)).toMatchObject({ msg: "stopped", drained: true });
  });
});
