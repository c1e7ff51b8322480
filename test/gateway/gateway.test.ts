import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  lastActivityOf,
} from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import {
  EventStream,
  type GptmeServer,
  requestsSeen,
  runInstancePod,
  startInstanceWithServer,
} from "../support/gptme.js";
import { echoUpgradeServer, rawUpgrade } from "../support/upgrade.js";

const KEY = "gateway-key-0000001";
const OTHER_KEY = "gateway-key-0000002";

// A real gptme-server (PyPI's) runs at each instance's loopback pod IP with the token from
// the instance's Secret, exactly as its container would: the gateway is tested against
// the program it serves in production.
describe("instance gateway, against a real gptme-server", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  const servers: GptmeServer[] = [];
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);

  const gateway = (path: string, init: RequestInit & { token?: string } = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
    return fetch(`${http.url}${instance.endpoint.path}${path}`, { ...rest, headers });
  };
  const json = { "content-type": "application/json" };

  beforeAll(async () => {
    namespace = await createTestNamespace("gateway");
    await installTemplate(namespace);
    handler = startHandler(namespace, {
      ACTIVITY_INTERVAL: "1s",
      PUBLIC_URL: "https://fleet.example.com/",
    });
    http = await listenHandler(handler);
    const started = await startInstanceWithServer(namespace, (wait) =>
      handler.request(`/instances/default?wait=${wait}`, { apiKey: KEY }),
    );
    instance = started.instance;
    servers.push(started.server);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("hands the client an endpoint and a token that reaches the pod only through its Secret", async () => {
    expect(instance.status).toBe("ready");
    expect(instance.endpoint).toEqual({
      path: `/api/v1/instances/${instance.name}`,
      url: `https://fleet.example.com/api/v1/instances/${instance.name}`,
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    const token: string = instance.endpoint.token;
    const pod = await core.readNamespacedPod({ name: instance.name, namespace });
    expect(JSON.stringify(pod)).not.toContain(token);
    const env = pod.spec?.containers[0]?.env?.find((e) => e.name === "GPTME_SERVER_TOKEN");
    const secretName = env?.valueFrom?.secretKeyRef?.name ?? "";
    const secret = await core.readNamespacedSecret({ name: secretName, namespace });
    expect(Buffer.from(secret.data?.token ?? "", "base64").toString()).toBe(token);
    const clientPod = (await custom.getNamespacedCustomObject({
      group: "gptme.ai",
      version: "v1",
      namespace,
      plural: "clientpods",
      name: instance.name,
    })) as { metadata: { uid: string } };
    expect(secret.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: "ClientPod", uid: clientPod.metadata.uid }),
    ]);
    expect(secret.metadata?.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/instance": "default",
    });
    expect(JSON.stringify(clientPod)).not.toContain(token);
  });

  it("carries a conversation, a mock/echo step and its event stream as the pod writes it", async () => {
    const token: string = instance.endpoint.token;
    const created = await gateway("/api/v2/conversations/chat-1", {
      method: "PUT",
      token,
      headers: json,
      body: JSON.stringify({ messages: [] }),
    });
    expect(created.status).toBe(200);
    const { session_id: session } = (await created.json()) as { session_id: string };

    // As gptme's web UI opens it: EventSource, so the token in the query, no header.
    const abort = new AbortController();
    const opened = performance.now();
    const response = await fetch(
      `${http.url}${instance.endpoint.path}/api/v2/conversations/chat-1/events?session_id=${session}&token=${token}`,
      { signal: abort.signal },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const stream = new EventStream(response);
    // The stream never ends: an event can only arrive if nothing buffers it.
    const connected = await stream.next((e) => e.type === "connected", 5_000);
    expect(connected.at - opened).toBeLessThan(2_000);

    await gateway("/api/v2/conversations/chat-1", {
      method: "POST",
      token,
      headers: json,
      body: JSON.stringify({ role: "user", content: "hello through the gateway" }),
    });
    const stepped = performance.now();
    const step = await gateway("/api/v2/conversations/chat-1/step", {
      method: "POST",
      token,
      headers: json,
      body: JSON.stringify({ model: "mock/echo", session_id: session }),
    });
    expect(step.status).toBe(200);
    const reply = await stream.next(
      (e) =>
        e.type === "generation_complete" &&
        JSON.stringify(e).includes("Echo: hello through the gateway"),
    );
    expect(reply.at).toBeGreaterThan(stepped);
    abort.abort();

    const listed = await gateway("/api/v2/conversations", { token });
    expect(JSON.stringify(await listed.json())).toContain("chat-1");
  });

  it("answers a missing, wrong or other instance's token with one 401, and no pod sees it", async () => {
    const other = await (
      await handler.request("/instances/other?wait=0", { apiKey: OTHER_KEY })
    ).json();
    const marker = `probe-${Date.now()}`;
    const server = servers[0] as GptmeServer;
    const seenBefore = await requestsSeen(server, "/api/v2/conversations");
    const refused = [
      await gateway(`/api/v2/conversations?${marker}`),
      await gateway(`/api/v2/conversations?${marker}`, { token: "not-the-token" }),
      await gateway(`/api/v2/conversations?${marker}`, { token: other.endpoint.token }),
      await fetch(
        `${http.url}/api/v1/instances/gptme-client-0000000000000000/api/v2/conversations?${marker}`,
        {
          headers: { authorization: `Bearer ${instance.endpoint.token}` },
        },
      ),
    ];
    const bodies = await Promise.all(refused.map((r) => r.json()));
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401, 401]);
    for (const body of bodies) {
      expect(body).toEqual({
        statusCode: 401,
        code: "invalid_token",
        message: expect.stringContaining("instance token"),
      });
    }
    expect(await requestsSeen(server, "/api/v2/conversations")).toBe(seenBefore);
    expect(server.log.join("")).not.toContain(marker);
  });

  it("sends the pod the instance's token, never the client's Authorization, X-API-Key or ?token=", async () => {
    const marker = `forwarded-${Date.now()}`;
    // Basic credentials are not a bearer token: the ?token= form authenticates, and the pod
    // accepts the request only because the gateway replaced the client's Authorization.
    const response = await gateway(
      `/api/v2/conversations?${marker}=1&token=${instance.endpoint.token}`,
      {
        headers: { authorization: "Basic Zm9vOmJhcg==", "x-api-key": KEY },
      },
    );
    expect(response.status).toBe(200);
    const logged = servers[0]?.log
      .join("")
      .split("\n")
      .find((line) => line.includes(marker));
    expect(logged).toBeDefined();
    expect(logged).not.toContain("token=");
  });

  it("hands a WebSocket upgrade to gptme-server's /preview/<port>/ as the pod would see it", async () => {
    // gptme-server 0.35.1 tunnels /preview/<port>/ to 127.0.0.1:<port> inside its pod; here the
    // pod's loopback is this machine's, where an echo server stands. Its Werkzeug server
    // answers such an upgrade 400 when it comes straight from a client too (see the README):
    // what is checked here is that the gateway delivers the upgrade, with the instance's
    // token, and hands back exactly what gptme-server answers.
    const echo = await echoUpgradeServer("127.0.0.1");
    const server = servers[0] as GptmeServer;
    try {
      const path = `/preview/${echo.port}/socket`;
      const refused = await rawUpgrade(http.url, `${instance.endpoint.path}${path}`, "");
      expect(refused.head).toMatch(/^HTTP\/1.1 401/);
      refused.socket.destroy();
      const direct = await rawUpgrade(
        server.url,
        path,
        `Authorization: Bearer ${server.token}\r\n`,
      );
      const via = await rawUpgrade(
        http.url,
        `${instance.endpoint.path}${path}?token=${instance.endpoint.token}`,
        "",
      );
      const statusLine = (head: string) => head.split("\r\n")[0];
      expect(statusLine(via.head)).toBe(statusLine(direct.head));
      direct.socket.destroy();
      via.socket.destroy();
    } finally {
      echo.server.close();
    }
  });

  it("counts proxied use as activity", async () => {
    const read = () => lastActivityOf(namespace, instance.name);
    const before = await read();
    await new Promise((r) => setTimeout(r, 1_100));
    expect(
      (await gateway("/api/v2/conversations", { token: instance.endpoint.token })).status,
    ).toBe(200);
    const after = await eventually(async () => {
      const value = await read();
      return value > before ? value : undefined;
    }, "lastActivity to move");
    expect(Date.parse(after)).toBeGreaterThan(Date.parse(before || "1970-01-01"));
  });

  it("refuses the old token at once when the instance is deleted and created again", async () => {
    const old: string = instance.endpoint.token;
    expect(
      (await handler.request("/instances/default", { method: "DELETE", apiKey: KEY })).status,
    ).toBe(200);
    await servers.shift()?.stop();
    // Its new Pod starting (its server is not up yet: 202).
    const again = await eventually(async () => {
      const body = await (
        await handler.request("/instances/default?wait=0", { apiKey: KEY })
      ).json();
      return body.status === "starting" && body.created ? body : undefined;
    }, "the instance to be created again");
    expect(again.endpoint.token).not.toBe(old);
    servers.unshift(await runInstancePod(namespace, again.name));
    instance = again;
    expect((await gateway("/api/v2/conversations", { token: old })).status).toBe(401);
    expect((await gateway("/api/v2/conversations", { token: again.endpoint.token })).status).toBe(
      200,
    );
  });

  it("writes no token into any log line, metric or object label and annotation", async () => {
    const token: string = instance.endpoint.token;
    const metrics = await (await handler.request("/metrics")).text();
    expect(metrics).toContain('route="/api/v1/instances/:name/**"');
    expect(metrics).not.toContain(token);
    expect(handler.logs.lines.join("\n")).not.toContain(token);
    const pods = await core.listNamespacedPod({ namespace });
    for (const pod of pods.items) {
      expect(JSON.stringify({ ...pod.metadata, spec: pod.spec })).not.toContain(token);
    }
  });
});
