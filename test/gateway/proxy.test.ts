import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/cluster.js";
import type { TestHandler } from "../support/fleet.js";
import {
  type InstanceAtPodServer,
  instanceAtPodServer,
  type PodServer,
} from "../support/pod-server.js";
import { rawUpgrade } from "../support/upgrade.js";

const KEY = "gateway-proxy-key-01";
const UI = "http://127.0.0.1:5173";

/**
 * The proxy's forwarding, seen from a minimal HTTP server at the instance's loopback pod IP
 * (test/support/pod-server.ts): paths, methods, headers, redirects, cookies, CORS, upgrades.
 */
describe("gateway proxy: what the pod receives and the client gets back", () => {
  let proxied: InstanceAtPodServer;
  let handler: TestHandler;
  let http: InstanceAtPodServer["http"];
  let pod: PodServer;
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;
  const url = (path: string) => `${http.url}${instance.endpoint.path}${path}`;
  const auth = () => ({ authorization: `Bearer ${instance.endpoint.token}` });

  beforeAll(async () => {
    proxied = await instanceAtPodServer("gwproxy", KEY, {
      ACTIVITY_INTERVAL: "1s",
      PROXY_TIMEOUT: "1s",
      PROXY_MAX_BODY: "1Ki",
      CORS_ORIGINS: `${UI},https://app.example.com`,
    });
    ({ handler, http, pod, instance } = proxied);
  });

  afterAll(() => proxied?.close());

  it("forwards the path without its prefix, the query without token, and the instance's token only", async () => {
    const response = await fetch(url(`/api/v2/x/y?a=1&token=${instance.endpoint.token}&b=%20`), {
      method: "PATCH",
      headers: {
        authorization: "Basic dXNlcjpwYXNz",
        "x-api-key": KEY,
        "content-type": "application/json",
      },
      body: JSON.stringify({ hello: "world" }),
    });
    expect(response.status).toBe(200);
    const seen = pod.last();
    expect(seen?.method).toBe("PATCH");
    expect(seen?.url).toBe("/api/v2/x/y?a=1&b=%20");
    expect(seen?.bytes).toBe(17);
    expect(seen?.headers.authorization).toBe(`Bearer ${instance.endpoint.token}`);
    expect(seen?.headers["x-api-key"]).toBeUndefined();
    expect(seen?.headers["x-forwarded-prefix"]).toBe(instance.endpoint.path);
    expect(seen?.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen?.headers["x-forwarded-proto"]).toBe("http");
    expect(seen?.headers["x-forwarded-host"]).toBe(new URL(http.url).host);
    // The bare prefix is the server's root.
    await fetch(url(""), { headers: auth() });
    expect(pod.last()?.url).toBe("/");
  });

  it("passes every method gptme-server serves, and drops hop-by-hop headers", async () => {
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]) {
      const response = await fetch(url("/api/v2/method"), { method, headers: auth() });
      expect(response.status, method).toBe(200);
      expect(pod.last()?.method).toBe(method);
    }
    // A header the client names in Connection is for the hop, not for the pod.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const target = new URL(url("/api/v2/hop"));
      const request = httpRequest(
        target,
        {
          headers: {
            ...auth(),
            connection: "keep-alive, x-hop",
            "x-hop": "secret",
            "keep-alive": "timeout=5",
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      request.on("error", reject);
      request.end();
    });
    expect(status).toBe(200);
    expect(pod.last()?.url).toBe("/api/v2/hop");
    expect(pod.last()?.headers["x-hop"]).toBeUndefined();
    expect(pod.last()?.headers["keep-alive"]).toBeUndefined();
    // ...and the pod's own hop stays with the pod: the client keeps its connection.
    const closing = await fetch(url("/close"), { headers: auth() });
    expect(await closing.text()).toBe("closing");
    expect(closing.headers.get("connection")).not.toBe("close");
    expect(closing.headers.get("x-hop-res")).toBeNull();
  });

  it("keeps redirects and cookies under the instance's prefix", async () => {
    const response = await fetch(url("/redirect"), { headers: auth(), redirect: "manual" });
    expect(response.status).toBe(308);
    expect(response.headers.get("location")).toBe(`${instance.endpoint.path}/api/v2/next/`);
    expect(response.headers.get("set-cookie")).toBe(
      `gptme_auth=x; Path=${instance.endpoint.path}/api/; HttpOnly`,
    );
  });

  it("answers preflights without a token and echoes only allowed origins, never *", async () => {
    const preflight = await fetch(url("/api/v2/conversations"), {
      method: "OPTIONS",
      headers: {
        origin: UI,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(UI);
    expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(preflight.headers.get("vary")).toContain("Origin");

    // The pod's own "*" is replaced by the exact origin.
    const answer = await fetch(url("/api/v2/x"), { headers: { ...auth(), origin: UI } });
    expect(answer.headers.get("access-control-allow-origin")).toBe(UI);
    const refused = await fetch(url("/api/v2/x"), { headers: { origin: UI } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(UI);
    const foreign = await fetch(url("/api/v2/x"), {
      headers: { ...auth(), origin: "https://evil.example" },
    });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();

    // The client routes too.
    const client = await fetch(`${http.url}/instances/default`, {
      headers: { "x-api-key": KEY, origin: UI },
    });
    expect(client.headers.get("access-control-allow-origin")).toBe(UI);
    const clientError = await fetch(`${http.url}/instances/default`, { headers: { origin: UI } });
    expect(clientError.status).toBe(401);
    expect(clientError.headers.get("access-control-allow-origin")).toBe(UI);
  });

  it("carries WebSocket upgrades both ways, with the same token check", async () => {
    const path = `${instance.endpoint.path}/preview/8000/ws`;
    const upgrade = (headers: string) => rawUpgrade(http.url, path, headers);

    const refused = await upgrade("");
    expect(refused.head).toMatch(/^HTTP\/1.1 401/);
    expect(refused.head).toContain('"code":"invalid_token"');
    refused.socket.destroy();

    const { head, socket } = await upgrade(`Authorization: Bearer ${instance.endpoint.token}\r\n`);
    expect(head).toMatch(/^HTTP\/1.1 101/);
    expect(pod.last()?.url).toBe("/preview/8000/ws");
    expect(pod.last()?.headers.authorization).toBe(`Bearer ${instance.endpoint.token}`);
    const echoed = new Promise<string>((resolve) =>
      socket.once("data", (d) => resolve(d.toString())),
    );
    socket.write("ping over the gateway");
    expect(await echoed).toBe("ping over the gateway");
    expect(handler.fleet.gateway.openExchanges).toBe(1);
    socket.destroy();
    await eventually(
      async () => (handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "the upgraded exchange to close",
    );
  });
});
