import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/cluster.js";
import {
  GATEWAY_TEST_ENV,
  type InstanceAtPodServer,
  instanceAtPodServer,
  UI_ORIGIN,
} from "../support/pod-server.js";
import { rawUpgrade } from "../support/upgrade.js";

const KEY = "gateway-proxy-key-01";

/**
 * The proxy's forwarding, seen from a minimal HTTP server at the instance's loopback pod IP
 * (test/support/pod-server.ts): paths, methods, headers, redirects, cookies, CORS, upgrades.
 */
describe("gateway proxy: what the pod receives and the client gets back", () => {
  let at: InstanceAtPodServer;

  beforeAll(async () => {
    at = await instanceAtPodServer("gwproxy", KEY, GATEWAY_TEST_ENV);
  });

  afterAll(() => at?.close());

  it("forwards the path without its prefix, the query without token, and the instance's token only", async () => {
    const response = await fetch(
      at.url(`/api/v2/x/y?a=1&token=${at.instance.endpoint.token}&b=%20`),
      {
        method: "PATCH",
        headers: {
          authorization: "Basic dXNlcjpwYXNz",
          "x-api-key": KEY,
          "content-type": "application/json",
        },
        body: JSON.stringify({ hello: "world" }),
      },
    );
    expect(response.status).toBe(200);
    const seen = at.pod.last();
    expect(seen?.method).toBe("PATCH");
    expect(seen?.url).toBe("/api/v2/x/y?a=1&b=%20");
    expect(seen?.bytes).toBe(17);
    expect(seen?.headers.authorization).toBe(`Bearer ${at.instance.endpoint.token}`);
    expect(seen?.headers["x-api-key"]).toBeUndefined();
    expect(seen?.headers["x-forwarded-prefix"]).toBe(at.instance.endpoint.path);
    expect(seen?.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen?.headers["x-forwarded-proto"]).toBe("http");
    expect(seen?.headers["x-forwarded-host"]).toBe(new URL(at.http.url).host);
    // The bare prefix is the server's root.
    await fetch(at.url(""), { headers: at.auth() });
    expect(at.pod.last()?.url).toBe("/");
  });

  it("passes every method gptme-server serves, and drops hop-by-hop headers", async () => {
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]) {
      const response = await fetch(at.url("/api/v2/method"), { method, headers: at.auth() });
      expect(response.status, method).toBe(200);
      expect(at.pod.last()?.method).toBe(method);
    }
    // A header the client names in Connection is for the hop, not for the at.pod.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const target = new URL(at.url("/api/v2/hop"));
      const request = httpRequest(
        target,
        {
          headers: {
            ...at.auth(),
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
    expect(at.pod.last()?.url).toBe("/api/v2/hop");
    expect(at.pod.last()?.headers["x-hop"]).toBeUndefined();
    expect(at.pod.last()?.headers["keep-alive"]).toBeUndefined();
    // ...and the pod's own hop stays with the pod: the client keeps its connection.
    const closing = await fetch(at.url("/close"), { headers: at.auth() });
    expect(await closing.text()).toBe("closing");
    expect(closing.headers.get("connection")).not.toBe("close");
    expect(closing.headers.get("x-hop-res")).toBeNull();
  });

  it("keeps redirects and cookies under the instance's prefix", async () => {
    const response = await fetch(at.url("/redirect"), { headers: at.auth(), redirect: "manual" });
    expect(response.status).toBe(308);
    expect(response.headers.get("location")).toBe(`${at.instance.endpoint.path}/api/v2/next/`);
    expect(response.headers.get("set-cookie")).toBe(
      `gptme_auth=x; Path=${at.instance.endpoint.path}/api/; HttpOnly`,
    );
  });

  it("answers preflights without a token and echoes only allowed origins, never *", async () => {
    const preflight = await fetch(at.url("/api/v2/conversations"), {
      method: "OPTIONS",
      headers: {
        origin: UI_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(preflight.headers.get("vary")).toContain("Origin");

    // The pod's own "*" is replaced by the exact origin.
    const answer = await fetch(at.url("/api/v2/x"), {
      headers: { ...at.auth(), origin: UI_ORIGIN },
    });
    expect(answer.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    const refused = await fetch(at.url("/api/v2/x"), { headers: { origin: UI_ORIGIN } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    const foreign = await fetch(at.url("/api/v2/x"), {
      headers: { ...at.auth(), origin: "https://evil.example" },
    });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();

    // The client routes too.
    const client = await fetch(`${at.http.url}/instances/default`, {
      headers: { "x-api-key": KEY, origin: UI_ORIGIN },
    });
    expect(client.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
    const clientError = await fetch(`${at.http.url}/instances/default`, {
      headers: { origin: UI_ORIGIN },
    });
    expect(clientError.status).toBe(401);
    expect(clientError.headers.get("access-control-allow-origin")).toBe(UI_ORIGIN);
  });

  it("carries WebSocket upgrades both ways, with the same token check", async () => {
    const path = `${at.instance.endpoint.path}/preview/8000/ws`;
    const upgrade = (headers: string) => rawUpgrade(at.http.url, path, headers);

    const refused = await upgrade("");
    expect(refused.head).toMatch(/^HTTP\/1.1 401/);
    expect(refused.head).toContain('"code":"invalid_token"');
    refused.socket.destroy();

    const { head, socket } = await upgrade(
      `Authorization: Bearer ${at.instance.endpoint.token}\r\n`,
    );
    expect(head).toMatch(/^HTTP\/1.1 101/);
    expect(at.pod.last()?.url).toBe("/preview/8000/ws");
    expect(at.pod.last()?.headers.authorization).toBe(`Bearer ${at.instance.endpoint.token}`);
    const echoed = new Promise<string>((resolve) =>
      socket.once("data", (d) => resolve(d.toString())),
    );
    socket.write("ping over the gateway");
    expect(await echoed).toBe("ping over the gateway");
    expect(at.handler.fleet.gateway.openExchanges).toBe(1);
    socket.destroy();
    await eventually(
      async () => (at.handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "the upgraded exchange to close",
    );
  });
});
