import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath } from "../support/cluster.js";
import { installTemplate } from "../support/fleet.js";
import { EventStream, type GptmeServer, runInstancePod } from "../support/gptme.js";
import { freePort, type HandlerProcess, spawnHandler, waitHealthy } from "../support/process.js";
import { startTraefik, type TestTraefik } from "../support/traefik.js";

const KEY = "traefik-key-0000001";

// A real Traefik, built from source like the control plane, routes with the repo's own
// Middleware and IngressRoute (read by its Kubernetes CRD provider) to a real handler.
describe("the public route through Traefik", () => {
  let namespace: string;
  let handler: HandlerProcess;
  let traefik: TestTraefik;
  let base: string;
  let gptme: GptmeServer | undefined;

  beforeAll(async () => {
    namespace = await createTestNamespace("traefik");
    await installTemplate(namespace);
    const handlerPort = await freePort();
    const traefikPort = await freePort();
    base = `http://127.0.0.1:${traefikPort}`;
    handler = spawnHandler({
      KUBECONFIG: kubeconfigPath(),
      NAMESPACE: namespace,
      HTTP_PORT: String(handlerPort),
      // Sign-in: the exchange names the instance's URL through Traefik, for the desktop app.
      PUBLIC_URL: base,
      CORS_ORIGINS: "tauri://localhost",
    });
    await waitHealthy(handler);

    // The repo's Middleware and IngressRoutes, moved into the test's namespace.
    traefik = await startTraefik(
      namespace,
      traefikPort,
      handlerPort,
      `/api/v1/${KEY}/instances/probe?wait=0`,
    );
  }, 15 * 60_000);

  afterAll(async () => {
    await gptme?.stop();
    traefik?.stop();
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

  it("mints a login code on the public path and exchanges it at /api/v1/operator/", async () => {
    const login = await fetch(`${base}/api/v1/${KEY}/instances/signin/login?wait=0`, {
      method: "POST",
    });
    expect(login.status).toBe(202);
    const body = (await login.json()) as { name: string; login: { code: string } };
    expect(body.name).toBe(instanceNameOf(clientIdOf(KEY), "signin"));
    const exchange = `${base}/api/v1/operator/auth/exchange`;
    // The desktop app's preflight, answered for its own origin.
    const preflight = await fetch(exchange, {
      method: "OPTIONS",
      headers: {
        origin: "tauri://localhost",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("tauri://localhost");
    const post = () =>
      fetch(exchange, {
        method: "POST",
        headers: { "content-type": "application/json", origin: "tauri://localhost" },
        body: JSON.stringify({ code: body.login.code }),
      });
    const first = await post();
    expect(first.status).toBe(200);
    expect(first.headers.get("access-control-allow-origin")).toBe("tauri://localhost");
    expect(await first.json()).toMatchObject({
      instanceUrl: `${base}/api/v1/instances/${body.name}`,
      instanceId: "signin",
    });
    const second = await post();
    expect(second.status).toBe(401);
    expect(await second.json()).toMatchObject({ code: "invalid_code", hint: expect.any(String) });
    // Only the operator's routes: nothing else under /api/v1/ without a key reaches the handler.
    expect((await fetch(`${base}/api/v1/operator`)).status).toBe(404);
  });
});
