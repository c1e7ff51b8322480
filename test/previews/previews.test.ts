import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODE_PARAMETER } from "../../handler/previews/link.js";
import { SESSION_COOKIE } from "../../handler/previews/session.js";
import { adminKubeConfig, eventually, lastActivityOf } from "../support/cluster.js";
import type { TestHandler } from "../support/fleet.js";
import { type GptmeServer, runInstancePod, startInstanceWithServer } from "../support/gptme.js";
import {
  cookiePair,
  PREVIEW_DOMAIN,
  PreviewApp,
  type PreviewHandler,
  previewRequest,
  startPreviewHandler,
} from "../support/preview.js";
import { echoUpgradeServer, rawUpgrade } from "../support/upgrade.js";

const KEY = "preview-key-0000001";
const OTHER_KEY = "preview-key-0000002";

// biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
type Instance = any;

/**
 * Previews against the real parts: the handler over HTTP, the real control plane, a real
 * gptme-server at each instance's loopback pod IP (its /preview/<port>/ proxies to
 * 127.0.0.1:<port>, which is this machine's), and apps listening there as an agent's would.
 */
describe("previews", () => {
  let fleet: PreviewHandler;
  let namespace: string;
  let handler: TestHandler;
  let http: PreviewHandler["http"];
  let listening: number;
  const servers = new Map<string, GptmeServer>();
  let a: Instance;
  let b: Instance;
  let appA: PreviewApp;
  let appA2: PreviewApp;
  let appB: PreviewApp;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  /** Every code and session value handed out, to be found in no log, metric or object. */
  const secrets: string[] = [];

  const hostOf = (name: string, port: number) => `${port}-${name}.${PREVIEW_DOMAIN}:${listening}`;
  const link = async (key: string, instanceId: string, port: number | string) =>
    handler.request(`/instances/${instanceId}/previews/${port}`, { method: "POST", apiKey: key });
  const linkUrl = async (key: string, instanceId: string, port: number) => {
    const res = await link(key, instanceId, port);
    expect(res.status).toBe(200);
    const { url } = (await res.json()) as { url: string };
    secrets.push(new URL(url).searchParams.get(CODE_PARAMETER) ?? "");
    return new URL(url);
  };
  const follow = (url: URL, host = url.host) =>
    previewRequest(http.url, host, url.pathname + url.search);
  /** Signs in to one preview: the cookie a browser would keep. */
  const signIn = async (key: string, instanceId: string, port: number) => {
    const answer = await follow(await linkUrl(key, instanceId, port));
    expect(answer.status).toBe(302);
    const cookie = cookiePair(answer.headers["set-cookie"]);
    secrets.push(cookie.split("=")[1] ?? "");
    return cookie;
  };
  const get = (name: string, port: number, path: string, headers: Record<string, string> = {}) =>
    previewRequest(http.url, hostOf(name, port), path, { headers });

  beforeAll(async () => {
    fleet = await startPreviewHandler("previews", {
      ACTIVITY_INTERVAL: "1s",
      LOGIN_CODE_TTL: "2s",
    });
    ({ namespace, handler, http, listening } = fleet);
    const startedA = await startInstanceWithServer(namespace, (wait) =>
      handler.request(`/instances/a?wait=${wait}`, { apiKey: KEY }),
    );
    a = startedA.instance;
    servers.set("a", startedA.server);
    const startedB = await startInstanceWithServer(namespace, (wait) =>
      handler.request(`/instances/b?wait=${wait}`, { apiKey: OTHER_KEY }),
    );
    b = startedB.instance;
    servers.set("b", startedB.server);
    appA = await new PreviewApp("app A").listen();
    appA2 = await new PreviewApp("app A2").listen();
    appB = await new PreviewApp("app B").listen();
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    await Promise.all([appA, appA2, appB].map((app) => app?.close()));
    await fleet?.close();
  });

  it("opens an app inside the instance after the one-time link, without the code", async () => {
    const res = await link(KEY, "a", appA.port);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { url: string; expiresAt: string };
    expect(body.url).toMatch(
      new RegExp(
        `^http://${appA.port}-${a.name}\\.preview\\.localhost:${listening}/\\?${CODE_PARAMETER}=[A-Za-z0-9_-]{43}$`,
      ),
    );
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(0);
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(2_000);
    const url = new URL(body.url);
    secrets.push(url.searchParams.get(CODE_PARAMETER) ?? "");

    const signedIn = await follow(url);
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.location).toBe("/");
    expect(signedIn.headers["cache-control"]).toBe("no-store");
    expect(signedIn.headers["referrer-policy"]).toBe("no-referrer");
    const setCookie = [signedIn.headers["set-cookie"] ?? []].flat();
    expect(setCookie).toHaveLength(1);
    // Exactly this host (no Domain), the whole path, out of scripts' reach, 12 hours.
    expect(setCookie[0]).toMatch(
      new RegExp(`^${SESSION_COOKIE}=[^;]+; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax$`),
    );
    const cookie = cookiePair(setCookie);
    secrets.push(cookie.split("=")[1] ?? "");
    // The code never reached the pod: the sign-in answered before anything was forwarded.
    expect(appA.received).toHaveLength(0);

    const page = await get(a.name, appA.port, "/", { cookie, accept: "text/html" });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<h1 id="title">app A</h1>');
    // Through gptme-server's /preview/<port>/: it sandboxes HTML (the page keeps its own
    // origin here, the preview host's), and no cookie comes back.
    expect(page.headers["content-security-policy"]).toMatch(
      /^sandbox allow-scripts .*allow-same-origin$/,
    );
    expect(page.headers["set-cookie"]).toBeUndefined();
    // The app saw neither the fleet's cookie nor any credential.
    expect(appA.last()?.url).toBe("/");
    expect(appA.last()?.headers.cookie).toBeUndefined();
    expect(appA.last()?.headers.authorization).toBeUndefined();

    // (gptme-server re-encodes the query it passes on: a query it keeps as is.)
    const deep = await get(a.name, appA.port, "/some/path?q=1&b=x", { cookie });
    expect(deep.status).toBe(200);
    expect(appA.last()?.url).toBe("/some/path?q=1&b=x");
    // The app's own redirects stay on the preview host.
    const redirect = await get(a.name, appA.port, "/go-home", { cookie });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe("/");
  });

  it("serves the preview alone on its host: no path there reaches the API or the gateway", async () => {
    const cookie = await signIn(KEY, "a", appA.port);
    for (const path of [
      `/api/v1/instances/${a.name}/api/v2/conversations`,
      "/instances",
      `/api/v1/${KEY}/instances/a`,
      "/metrics",
      "/admin/pods",
    ]) {
      const answer = await get(a.name, appA.port, path, {
        cookie,
        authorization: `Bearer ${a.endpoint.token}`,
        "x-api-key": KEY,
      });
      expect(answer.status, path).toBe(200);
      expect(answer.body, path).toContain("app A");
      expect(appA.last()?.url).toBe(path);
    }
    // ...and without a session none of them is answered by anything but the sign-in refusal.
    const refused = await get(a.name, appA.port, "/instances", { "x-api-key": KEY });
    expect(refused.status).toBe(401);
  });

  it("works once per code, for its port only, and not once expired", async () => {
    const url = await linkUrl(KEY, "a", appA.port);
    expect((await follow(url)).status).toBe(302);
    expect((await follow(url)).status).toBe(401);

    // A code for one port opens no other (and stays good for its own).
    const forA = await linkUrl(KEY, "a", appA.port);
    expect((await follow(forA, hostOf(a.name, appA2.port))).status).toBe(401);
    expect((await follow(forA)).status).toBe(302);
    // A code for A's port, shown to B's host on the same port, signs in to nothing.
    const stolen = await linkUrl(KEY, "a", appA.port);
    expect((await follow(stolen, hostOf(b.name, appA.port))).status).toBe(401);

    const late = await linkUrl(KEY, "a", appA.port);
    await new Promise((r) => setTimeout(r, 2_200));
    expect((await follow(late)).status).toBe(401);

    const forged = new URL(late);
    forged.searchParams.set(CODE_PARAMETER, "A".repeat(43));
    expect((await follow(forged)).status).toBe(401);
  });

  it("answers 401 without a valid session: a page for browsers, JSON for the rest", async () => {
    const json = await get(a.name, appA.port, "/", { accept: "application/json" });
    expect(json.status).toBe(401);
    expect(JSON.parse(json.body)).toMatchObject({
      statusCode: 401,
      code: "preview_sign_in_required",
    });
    const html = await get(a.name, appA.port, "/", { accept: "text/html,*/*" });
    expect(html.status).toBe(401);
    expect(html.headers["content-type"]).toMatch(/^text\/html/);
    expect(html.body).toContain("Open this preview from your gptme client");
    const cookie = await signIn(KEY, "a", appA.port);
    const tampered = `${cookie.slice(0, -2)}${cookie.endsWith("AA") ? "BB" : "AA"}`;
    expect((await get(a.name, appA.port, "/", { cookie: tampered })).status).toBe(401);
    expect(appA.received.some((r) => r.headers.cookie?.includes(SESSION_COOKIE))).toBe(false);
  });

  it("keeps each session to its own host: not another instance's, nor another port", async () => {
    const cookieA = await signIn(KEY, "a", appA.port);
    const cookieB = await signIn(OTHER_KEY, "b", appB.port);
    expect((await get(b.name, appB.port, "/", { cookie: cookieB })).body).toContain("app B");
    // A's cookie, copied to B's host (any port) or to another port of A: refused.
    expect((await get(b.name, appB.port, "/", { cookie: cookieA })).status).toBe(401);
    expect((await get(b.name, appA.port, "/", { cookie: cookieA })).status).toBe(401);
    expect((await get(a.name, appA2.port, "/", { cookie: cookieA })).status).toBe(401);
    // B's client cannot mint a link to A's instance: its own "a" is another instance.
    expect((await link(OTHER_KEY, "a", appA.port)).status).toBe(404);
  });

  it("answers 404, the same for all, for hosts that name no preview, before any pod", async () => {
    const seen = appA.received.length;
    const answers = await Promise.all(
      [
        `1023-${a.name}.${PREVIEW_DOMAIN}`,
        `65536-${a.name}.${PREVIEW_DOMAIN}`,
        `0${appA.port}-${a.name}.${PREVIEW_DOMAIN}`,
        `${appA.port}-gptme-client-0000000000000000.${PREVIEW_DOMAIN}`,
        `${appA.port}-${a.name}x.${PREVIEW_DOMAIN}`,
        `www.${PREVIEW_DOMAIN}`,
        `x.${appA.port}-${a.name}.${PREVIEW_DOMAIN}`,
      ].map((host) => previewRequest(http.url, `${host}:${listening}`, "/")),
    );
    for (const answer of answers) {
      expect(answer.status).toBe(404);
      expect(answer.body).toBe(answers[0]?.body);
    }
    expect(appA.received.length).toBe(seen);
    // Asking for a link: a port out of range is the client's error; an unknown instance, 404.
    expect((await (await link(KEY, "a", 80)).json()).code).toBe("invalid_port");
    expect((await (await link(KEY, "a", "65536")).json()).code).toBe("invalid_port");
    expect((await (await link(KEY, "a", "5173x")).json()).code).toBe("invalid_port");
    const unknown = await link(KEY, "nobody", 5173);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).code).toBe("not_found");
    expect((await link("", "a", 5173)).status).toBe(401);
  });

  it("carries a WebSocket upgrade to gptme-server's /preview/<port>/ and hands back its answer", async () => {
    // gptme-server 0.35.1 tunnels only where its WSGI server hands over the socket; under its
    // Werkzeug server it answers 400. Pinned: the fleet must hand back exactly that.
    const echo = await echoUpgradeServer("127.0.0.1");
    try {
      const cookie = await signIn(KEY, "a", echo.port);
      const host = hostOf(a.name, echo.port);
      const refused = await rawUpgrade(http.url, "/socket", "", host);
      expect(refused.head).toMatch(/^HTTP\/1.1 401/);
      refused.socket.destroy();
      const server = servers.get("a") as GptmeServer;
      const direct = await rawUpgrade(
        server.url,
        `/preview/${echo.port}/socket`,
        `Authorization: Bearer ${server.token}\r\n`,
      );
      const via = await rawUpgrade(http.url, "/socket", `Cookie: ${cookie}\r\n`, host);
      const statusLine = (head: string) => head.split("\r\n")[0];
      expect(statusLine(direct.head)).toBe("HTTP/1.1 400 BAD REQUEST");
      expect(statusLine(via.head)).toBe(statusLine(direct.head));
      direct.socket.destroy();
      via.socket.destroy();
    } finally {
      echo.server.close();
    }
  });

  it("counts preview use as activity", async () => {
    const read = () => lastActivityOf(namespace, a.name);
    const cookie = await signIn(KEY, "a", appA.port);
    const before = await read();
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await get(a.name, appA.port, "/", { cookie })).status).toBe(200);
    await eventually(async () => ((await read()) > before ? true : undefined), "lastActivity");
  });

  it("refuses the old session once the instance is recreated", async () => {
    const cookie = await signIn(KEY, "a", appA.port);
    expect((await get(a.name, appA.port, "/", { cookie })).status).toBe(200);
    expect((await handler.request("/instances/a", { method: "DELETE", apiKey: KEY })).status).toBe(
      200,
    );
    await servers.get("a")?.stop();
    servers.delete("a");
    await eventually(
      async () =>
        (await core.readNamespacedPod({ name: a.name, namespace }).catch(() => undefined))
          ? undefined
          : true,
      "the old pod to go",
    );
    const started = await startInstanceWithServer(namespace, (wait) =>
      handler.request(`/instances/a?wait=${wait}`, { apiKey: KEY }),
    );
    const again: Instance = started.instance;
    expect(again.name).toBe(a.name);
    servers.set("a", started.server);
    expect((await get(a.name, appA.port, "/", { cookie })).status).toBe(401);
    // A new link opens it again.
    const fresh = await signIn(KEY, "a", appA.port);
    expect((await get(a.name, appA.port, "/", { cookie: fresh })).status).toBe(200);
  });

  it("holds a request for an instance whose gptme-server is still starting, then answers", async () => {
    const late = await (await handler.request("/instances/late?wait=0", { apiKey: KEY })).json();
    const cookie = await signIn(KEY, "late", appA.port);
    // Nothing answers at its pod IP yet: the request is held (GATEWAY_HOLD), not refused.
    const answer = get(late.name, appA.port, "/", { cookie });
    await new Promise((r) => setTimeout(r, 1_000));
    servers.set("late", await runInstancePod(namespace, late.name));
    const page = await answer;
    expect(page.status, page.body).toBe(200);
    expect(page.body).toContain("app A");
  }, 60_000);

  it("keeps every code and session value out of logs, metrics and objects", async () => {
    expect(secrets.length).toBeGreaterThan(10);
    const metrics = await handler.metrics.registry.metrics();
    const configMaps = JSON.stringify(await core.listNamespacedConfigMap({ namespace }));
    const logs = handler.logs.lines.join("\n");
    for (const secret of secrets.filter((s) => s.length > 20)) {
      expect(logs).not.toContain(secret);
      expect(metrics).not.toContain(secret);
      expect(configMaps).not.toContain(secret);
    }
    for (const server of servers.values()) {
      const log = server.log.join("");
      for (const secret of secrets.filter((s) => s.length > 20)) expect(log).not.toContain(secret);
    }
  });
});
