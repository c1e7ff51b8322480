import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { CODE_SELECTOR } from "../../shared/tokens/signin-code.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
  type TestResponse,
} from "../support/fleet.js";
import {
  EventStream,
  type GptmeServer,
  runInstancePod,
  startInstanceWithServer,
} from "../support/gptme.js";

const KEY = "signin-key-AAAAAAAA";
const OTHER_KEY = "signin-key-BBBBBBBB";
const PUBLIC_URL = "https://fleet.example.com";
const WEBUI_URL = "http://127.0.0.1:5701/";
const SSE_TTL_MS = 2_000;
const json = { "content-type": "application/json" };

// A pod may take a while to be Ready when the shared machine is loaded: waits up to 60 s.
describe("sign-in with one-time codes on the real control plane", { timeout: 180_000 }, () => {
  let namespace: string;
  let replicaA: TestHandler;
  let replicaB: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let admin: Kube;
  const servers: GptmeServer[] = [];
  const env = {
    PUBLIC_URL,
    WEBUI_URL,
    CORS_ORIGINS: "tauri://localhost,http://127.0.0.1:5701",
  };

  const login = async (handler: TestHandler, instanceId: string, key = KEY, wait = 0) =>
    handler.request(`/instances/${instanceId}/login?wait=${wait}`, { apiKey: key, method: "POST" });
  const exchange = (handler: TestHandler, body: unknown, headers: Record<string, string> = {}) =>
    handler.request("/api/v1/operator/auth/exchange", {
      method: "POST",
      headers: { ...json, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const codeOf = async (res: TestResponse): Promise<string> => (await res.json()).login.code;

  beforeAll(async () => {
    namespace = await createTestNamespace("signin");
    await installTemplate(namespace);
    replicaA = startHandler(namespace, env);
    replicaB = startHandler(namespace, env);
    http = await listenHandler(replicaA);
    admin = new Kube(credentialsOf(adminKubeConfig()), namespace);
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await http?.close();
    replicaA?.close();
    replicaB?.close();
    admin?.close();
    await deleteTestNamespace(namespace);
  });

  it("answers the instance plus a login code and its web UI link", async () => {
    // The instance starts, its server runs at the pod IP (mock/echo, for the streams below),
    // then the login answers 200 with the ready instance.
    let res: TestResponse | undefined;
    const started = await startInstanceWithServer(
      namespace,
      async (wait) => {
        res = await login(replicaA, "web", KEY, wait);
        return res;
      },
      ["--model", "mock/echo"],
    );
    servers.push(started.server);
    expect(res?.status).toBe(200);
    expect(res?.headers.get("cache-control")).toBe("no-store");
    const body = started.instance;
    expect(body).toMatchObject({
      name: instanceNameOf(clientIdOf(KEY), "web"),
      instanceId: "web",
      status: "ready",
    });
    expect(body.login.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.login.url).toBe(`${WEBUI_URL}#code=${body.login.code}`);
    expect(Date.parse(body.login.expiresAt) - Date.now()).toBeGreaterThan(50_000);
    expect(Date.parse(body.login.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    // The public path takes the key from the path, as GET does.
    const viaPath = await replicaA.request(`/api/v1/${KEY}/instances/web/login`, {
      method: "POST",
    });
    expect(viaPath.status).toBe(200);
    expect((await viaPath.json()).name).toBe(body.name);
    // Same identity rules as GET.
    expect((await replicaA.request("/instances/web/login", { method: "POST" })).status).toBe(401);
    expect((await login(replicaA, "Bad_Id")).status).toBe(400);
  });

  it("exchanges a code once, on another replica, for the instance's connection", async () => {
    const minted = await login(replicaA, "web");
    const code = await codeOf(minted);
    const instance = await (await replicaA.request("/instances/web", { apiKey: KEY })).json();
    replicaB.counter.reset();
    const res = await exchange(replicaB, { code }, { origin: "tauri://localhost" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("tauri://localhost");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const answer = await res.json();
    expect(answer).toEqual({
      userToken: instance.endpoint.token,
      instanceUrl: `${PUBLIC_URL}/api/v1/instances/${instance.name}`,
      instanceId: "web",
      sseToken: expect.stringMatching(/^sse1\./),
    });
    // At most one write: the code's delete.
    expect(replicaB.counter.calls.filter((c) => !/^(get|list) /.test(c))).toEqual([
      "delete configmaps",
    ]);
    const again = await exchange(replicaA, { code });
    expect(again.status).toBe(401);
    expect(await again.json()).toEqual({
      statusCode: 401,
      code: "invalid_code",
      message: expect.any(String),
      error: expect.any(String),
      hint: "The sign-in link has expired or was already used. Sign in again.",
    });
  });

  it("lets exactly one of 50 concurrent exchanges across two replicas win", async () => {
    const code = await codeOf(await login(replicaA, "web"));
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => exchange(i % 2 ? replicaA : replicaB, { code })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(49);
  });

  it("answers one 401 for unknown, expired and deleted-instance codes; 400 for a bad body", async () => {
    const short = startHandler(namespace, { ...env, LOGIN_CODE_TTL: "1s" });
    try {
      const expired = await codeOf(await login(short, "web"));
      await new Promise((r) => setTimeout(r, 1_100));
      const doomed = await codeOf(await login(replicaA, "doomed"));
      expect(
        (await replicaA.request("/instances/doomed", { apiKey: KEY, method: "DELETE" })).status,
      ).toBe(200);
      const bodies = [];
      for (const code of [expired, doomed, "A".repeat(43), "not a code", "../../etc"]) {
        const res = await exchange(replicaB, { code });
        expect(res.status, code).toBe(401);
        const { message: _, ...body } = await res.json();
        bodies.push(body);
      }
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    } finally {
      short.close();
    }
    for (const body of ["not json", "[]", "null", { code: 42 }, {}, { code: "" }]) {
      const res = await exchange(replicaA, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json()).code).toBe("invalid_body");
    }
    const metrics = await replicaB.metrics.registry.metrics();
    expect(metrics).toMatch(/fleet_signin_exchange_failures_total\{code="invalid_code"\} [1-9]/);
  });

  it("answers 500 public_url_missing without PUBLIC_URL, and keeps the code", async () => {
    const bare = startHandler(namespace, { ...env, PUBLIC_URL: "" });
    try {
      const code = await codeOf(await login(replicaA, "web"));
      const res = await exchange(bare, { code });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ code: "public_url_missing" });
      expect((await exchange(replicaA, { code })).status).toBe(200);
    } finally {
      bare.close();
    }
  });

  it("never puts a raw code in an object, a log line or a metric", async () => {
    const code = await codeOf(await login(replicaA, "web"));
    const objects = JSON.stringify(await admin.codes.list({ labelSelector: CODE_SELECTOR }));
    expect(objects).toContain("gptme-code-");
    expect(objects).not.toContain(code);
    expect((await exchange(replicaB, { code })).status).toBe(200);
    for (const handler of [replicaA, replicaB]) {
      expect(handler.logs.lines.join("\n")).not.toContain(code);
      expect(await handler.metrics.registry.metrics()).not.toContain(code);
    }
  });

  describe("event-stream tokens at the gateway", () => {
    let instance: { name: string; endpoint: { path: string; token: string } };
    let base: string;
    /** The session of the conversation the streams below listen to. */
    let session: string;

    async function signIn(instanceId: string, key = KEY) {
      const code = await codeOf(await login(replicaA, instanceId, key));
      return (await exchange(replicaA, { code })).json();
    }

    const events = (sseToken: string, conversation = "sse-chat", at = base) =>
      fetch(
        `${at}/api/v2/conversations/${conversation}/events?token=${encodeURIComponent(sseToken)}`,
      );

    beforeAll(async () => {
      // Its server (mock/echo) runs since the first test; alone, this suite starts it.
      const ready = await replicaA.request("/instances/web?wait=0", { apiKey: KEY });
      if (ready.status === 200) {
        instance = await ready.json();
      } else {
        const started = await startInstanceWithServer(
          namespace,
          (wait) => replicaA.request(`/instances/web?wait=${wait}`, { apiKey: KEY }),
          ["--model", "mock/echo"],
        );
        instance = started.instance;
        servers.push(started.server);
      }
      base = `${http.url}${instance.endpoint.path}`;
      const put = await fetch(`${base}/api/v2/conversations/sse-chat`, {
        method: "PUT",
        headers: { ...json, authorization: `Bearer ${instance.endpoint.token}` },
        body: JSON.stringify({ messages: [] }),
      });
      expect(put.status).toBe(200);
      session = ((await put.json()) as { session_id: string }).session_id;
    });

    it("is accepted on its instance's event streams and refused everywhere else", async () => {
      const { sseToken, userToken } = await signIn("web");
      const abort = new AbortController();
      const stream = await fetch(`${base}/api/v2/conversations/sse-chat/events?token=${sseToken}`, {
        signal: abort.signal,
      });
      expect(stream.status).toBe(200);
      await new EventStream(stream).next((e) => e.type === "connected", 5_000);
      abort.abort();
      // Which credential the gateway admitted, in its log (never the token itself), once the
      // stream has closed.
      await eventually(
        async () =>
          replicaA.logs.lines
            .map((l) => JSON.parse(l))
            .some((l) => l.route?.startsWith("/api/v1/instances/") && l.credential === "sse-token")
            ? true
            : undefined,
        "the gateway's log line for the stream",
      );
      expect(replicaA.logs.lines.join("\n")).not.toContain(sseToken);
      const refused = [
        await fetch(`${base}/api/v2/conversations?token=${sseToken}`),
        await fetch(`${base}/api/v2/conversations/sse-chat?token=${sseToken}`),
        await fetch(`${base}/api/v2/conversations/sse-chat/step?token=${sseToken}`, {
          method: "POST",
          headers: json,
          body: JSON.stringify({ model: "mock/echo" }),
        }),
        await fetch(`${base}/api/v2/conversations/sse-chat/events`, {
          headers: { authorization: `Bearer ${sseToken}` },
        }),
        await fetch(`${base}/api/v2/conversations/sse-chat/events?token=${sseToken}`, {
          method: "POST",
        }),
      ];
      for (const res of refused) {
        expect(res.status, res.url).toBe(401);
        expect(((await res.json()) as { code: string }).code).toBe("invalid_token");
      }
      // The user token still works everywhere.
      const listed = await fetch(`${base}/api/v2/conversations`, {
        headers: { authorization: `Bearer ${userToken}` },
      });
      expect(listed.status).toBe(200);
    });

    it("is refused on another instance's event streams", async () => {
      const other = await signIn("sse-other", OTHER_KEY);
      const res = await events(other.sseToken);
      expect(res.status).toBe(401);
    });

    it("expires after SSE_TOKEN_TTL, while a stream opened before keeps flowing", async () => {
      const short = startHandler(namespace, { ...env, SSE_TOKEN_TTL: `${SSE_TTL_MS / 1000}s` });
      const shortHttp = await listenHandler(short);
      const at = `${shortHttp.url}${instance.endpoint.path}`;
      const code = await codeOf(await login(short, "web"));
      const { sseToken, userToken } = await (await exchange(short, { code })).json();
      const abort = new AbortController();
      const res = await fetch(
        `${at}/api/v2/conversations/sse-chat/events?session_id=${session}&token=${sseToken}`,
        { signal: abort.signal },
      );
      expect(res.status).toBe(200);
      const stream = new EventStream(res);
      await stream.next((e) => e.type === "connected", 5_000);
      await new Promise((r) => setTimeout(r, SSE_TTL_MS + 500));
      expect((await events(sseToken, "sse-chat", at)).status).toBe(401);
      const auth = { ...json, authorization: `Bearer ${userToken}` };
      await fetch(`${base}/api/v2/conversations/sse-chat`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ role: "user", content: "after expiry" }),
      });
      await fetch(`${base}/api/v2/conversations/sse-chat/step`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ model: "mock/echo", session_id: session }),
      });
      await stream.next(
        (e) => e.type === "generation_complete" && JSON.stringify(e).includes("Echo: after expiry"),
      );
      abort.abort();
      await shortHttp.close();
      short.close();
    });

    it("dies with its instance: a recreated instance refuses it", async () => {
      const { sseToken } = await signIn("recreated");
      const name = instanceNameOf(clientIdOf(KEY), "recreated");
      const first = await runInstancePod(namespace, name);
      const at = `${http.url}/api/v1/instances/${name}`;
      try {
        expect(
          (await fetch(`${at}/api/v2/conversations/x/events?token=${sseToken}`)).status,
        ).not.toBe(401);
      } finally {
        await first.stop();
      }
      await replicaA.request("/instances/recreated", { apiKey: KEY, method: "DELETE" });
      const core = adminKubeConfig().makeApiClient(CoreV1Api);
      await eventually(
        async () =>
          (await core.readNamespacedPod({ name, namespace }).catch(() => undefined))
            ? undefined
            : true,
        "the old pod to go",
      );
      const { instance: again, server: second } = await startInstanceWithServer(namespace, (wait) =>
        replicaA.request(`/instances/recreated?wait=${wait}`, { apiKey: KEY }),
      );
      servers.push(second);
      expect(again.name).toBe(name);
      const res = await fetch(`${at}/api/v2/conversations/x/events?token=${sseToken}`);
      expect(res.status).toBe(401);
    });
  });
});
