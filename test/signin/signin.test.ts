import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import type { Kube } from "../../shared/kube/client.js";
import { CODE_SELECTOR } from "../../shared/tokens/signin-code.js";
import { startHandler, type TestHandler, type TestResponse } from "../support/fleet.js";
import { type GptmeServer, startInstanceWithServer } from "../support/gptme.js";
import {
  codeOf,
  exchange,
  KEY,
  login,
  SIGNIN_ENV,
  type SignInFleet,
  startSignInFleet,
} from "../support/signin.js";

// A pod may take a while to be Ready when the shared machine is loaded: waits up to 60 s.
describe("sign-in with one-time codes on the real control plane", { timeout: 180_000 }, () => {
  let fleet: SignInFleet;
  let namespace: string;
  let replicaA: TestHandler;
  let replicaB: TestHandler;
  let admin: Kube;
  let servers: GptmeServer[];

  beforeAll(async () => {
    fleet = await startSignInFleet("signin");
    ({ namespace, replicaA, replicaB, admin, servers } = fleet);
  });

  afterAll(() => fleet?.close());

  it("answers the instance plus a login code and its web UI link", async () => {
    // The instance starts, its server runs at the pod IP (mock/echo),
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
    expect(body.login.url).toBe(`${SIGNIN_ENV.WEBUI_URL}#code=${body.login.code}`);
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
      instanceUrl: `${SIGNIN_ENV.PUBLIC_URL}/api/v1/instances/${instance.name}`,
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
    const short = startHandler(namespace, { ...SIGNIN_ENV, LOGIN_CODE_TTL: "1s" });
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
    const bare = startHandler(namespace, { ...SIGNIN_ENV, PUBLIC_URL: "" });
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
});
