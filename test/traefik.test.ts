import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CoreV1Api, KubernetesObjectApi, loadAllYaml } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../shared/names.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
} from "./support/cluster.js";
import { installTemplate } from "./support/fleet.js";
import { EventStream, type GptmeServer, runInstancePod } from "./support/gptme.js";
import { freePort, type HandlerProcess, spawnHandler, waitHealthy } from "./support/process.js";

const ROOT = resolve(import.meta.dirname, "..");
const KEY = "traefik-key-0000001";

// A real Traefik, built from source like the control plane, routes with the repo's own
// Middleware and IngressRoute (read by its Kubernetes CRD provider) to a real handler.
describe("the public route through Traefik", () => {
  let namespace: string;
  let handler: HandlerProcess;
  let traefik: ChildProcess;
  let traefikLog = "";
  let base: string;
  let gptme: GptmeServer | undefined;

  beforeAll(async () => {
    namespace = await createTestNamespace("traefik");
    await installTemplate(namespace);
    const handlerPort = await freePort();
    handler = spawnHandler({
      KUBECONFIG: kubeconfigPath(),
      NAMESPACE: namespace,
      HTTP_PORT: String(handlerPort),
    });
    await waitHealthy(handler);

    // The repo's Middleware and IngressRoute, moved into the test's namespace.
    const objects = loadAllYaml(
      readFileSync(resolve(ROOT, "k8s/local/fleet-operator/09-traefik-route.yaml"), "utf8"),
    );
    const api = KubernetesObjectApi.makeApiClient(adminKubeConfig());
    for (const object of objects) {
      await api.create({ ...object, metadata: { ...object.metadata, namespace } });
    }
    // The fleet-handler Service, standing for the Deployment: this machine's handler process.
    await adminKubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespacedService({
        namespace,
        body: {
          metadata: { name: "fleet-handler" },
          spec: {
            type: "ExternalName",
            externalName: "localhost",
            ports: [{ name: "http", port: handlerPort }],
          },
        },
      });

    const traefikPort = await freePort();
    base = `http://127.0.0.1:${traefikPort}`;
    traefik = spawn("bash", [resolve(ROOT, "scripts/traefik.sh"), String(traefikPort), namespace], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    traefik.stdout?.on("data", (d) => (traefikLog += d));
    traefik.stderr?.on("data", (d) => (traefikLog += d));
    // Ready when the route answers from the handler (the provider needs a moment).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await fetch(`${base}/api/v1/${KEY}/instances/probe?wait=0`).catch(
        () => undefined,
      );
      if (res && res.status !== 404) break;
      if (Date.now() > deadline) throw new Error(`Traefik did not route in time:\n${traefikLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 15 * 60_000);

  afterAll(async () => {
    await gptme?.stop();
    traefik?.kill("SIGTERM");
    handler?.proc.kill("SIGTERM");
    await deleteTestNamespace(namespace);
  });

  const handlerRequests = () =>
    handler.stdout
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request" && l.route !== "/healthz");

  /** How many requests the handler has logged, once no new line arrived for 300 ms. */
  async function settledRequestCount(): Promise<number> {
    let count = -1;
    while (count !== handlerRequests().length) {
      count = handlerRequests().length;
      await new Promise((r) => setTimeout(r, 300));
    }
    return count;
  }

  it("reaches the handler as GET /instances/:id with the key from the path", async () => {
    // Nothing answers at a KWOK pod's IP here: the instance is starting (202), as it should be.
    const res = await fetch(`${base}/api/v1/${KEY}/instances/via-traefik?wait=0`);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { name: string; status: string };
    expect(body).toMatchObject({
      name: instanceNameOf(clientIdOf(KEY), "via-traefik"),
      status: "starting",
    });
    // The handler saw the rewritten route: the key travelled in the header, not the path.
    await settledRequestCount();
    expect(handlerRequests().at(-1)).toMatchObject({
      route: "/instances/:instanceId",
      status: 202,
    });
  });

  it("takes the key from the path even when the client sends its own X-API-Key", async () => {
    const res = await fetch(`${base}/api/v1/${KEY}/instances/via-traefik?wait=0`, {
      headers: { "x-api-key": "someone-elses-key-123" },
    });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { name: string }).name).toBe(
      instanceNameOf(clientIdOf(KEY), "via-traefik"),
    );
  });

  it("keeps a key with URL-encoded characters intact", async () => {
    const key = "slash/and+plus=key";
    const res = await fetch(`${base}/api/v1/${encodeURIComponent(key)}/instances/encoded?wait=0`);
    expect(res.status).toBeLessThan(300);
    expect(((await res.json()) as { name: string }).name).toBe(
      instanceNameOf(clientIdOf(key), "encoded"),
    );
  });

  it("does not route other paths or methods to the handler", async () => {
    // The handler's log lines reach this process through a pipe, a moment after its answers.
    const before = await settledRequestCount();
    for (const [method, path] of [
      ["GET", `/instances/direct`],
      ["GET", `/api/v1/${KEY}/instances`],
      ["GET", `/api/v1/${KEY}/instances/Bad_Id`],
      ["GET", `/api/v1/${KEY}/admin/pods`],
      ["GET", `/api/v2/${KEY}/instances/x`],
      ["DELETE", `/api/v1/${KEY}/instances/via-traefik`],
      ["GET", "/metrics"],
    ]) {
      const res = await fetch(`${base}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect(await settledRequestCount()).toBe(before);
  });

  it("carries the instance gateway's traffic unchanged to the instance's real gptme-server", async () => {
    const instance = (await (
      await fetch(`${base}/api/v1/${KEY}/instances/gateway?wait=0`)
    ).json()) as { name: string; endpoint: { path: string; token: string } };
    gptme = await runInstancePod(namespace, instance.name);
    const { path, token } = instance.endpoint;
    const put = await fetch(`${base}${path}/api/v2/conversations/through-traefik`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [] }),
    });
    expect(put.status).toBe(200);
    const { session_id: session } = (await put.json()) as { session_id: string };
    const abort = new AbortController();
    const events = new EventStream(
      await fetch(
        `${base}${path}/api/v2/conversations/through-traefik/events?session_id=${session}&token=${token}`,
        {
          signal: abort.signal,
        },
      ),
    );
    await events.next((e) => e.type === "connected", 5_000);
    abort.abort();
    const listed = await fetch(`${base}${path}/api/v2/conversations`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(JSON.stringify(await listed.json())).toContain("through-traefik");
    expect((await fetch(`${base}${path}/api/v2/conversations`)).status).toBe(401);
    // Only instance names route to the gateway.
    expect((await fetch(`${base}/api/v1/instances/not-an-instance/api/v2`)).status).toBe(404);
  });
});
