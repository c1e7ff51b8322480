import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
} from "../support/fleet.js";
import { assertLocal, podIpOf } from "../support/gptme.js";
import { rawUpgrade } from "../support/upgrade.js";

const KEY = "gateway-proxy-key-01";
const UI = "http://127.0.0.1:5173";

/**
 * The proxy's own mechanics (headers, redirects, limits, timeouts, aborts, upgrades), seen
 * from a minimal HTTP server standing at an instance's loopback pod IP, which reports what
 * it received. What gptme-server itself does is tested against the real one
 * (gateway.test.ts).
 */
class PodServer {
  readonly server: Server;
  readonly open = new Set<IncomingMessage>();
  received: {
    method?: string;
    url?: string;
    headers: IncomingMessage["headers"];
    bytes: number;
  }[] = [];

  constructor(readonly host: string) {
    assertLocal(host);
    this.server = createServer((req, res) => {
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on("end", () => {
        this.received.push({ method: req.method, url: req.url, headers: req.headers, bytes });
        const path = req.url ?? "";
        // gptme-server writes absolute redirects to its own Host, and cookies at /api/.
        if (path.startsWith("/redirect")) {
          res.writeHead(308, {
            location: `http://${req.headers.host}/api/v2/next/`,
            "set-cookie": ["gptme_auth=x; Path=/api/; HttpOnly"],
          });
          res.end();
        } else if (path.startsWith("/close")) {
          // As gptme-server answers: every connection closed after one response.
          res.writeHead(200, { connection: "close, x-hop-res", "x-hop-res": "1" });
          res.end("closing");
        } else if (path.startsWith("/hang")) {
          this.open.add(req);
          res.on("close", () => this.open.delete(req));
        } else if (path.startsWith("/stream")) {
          this.open.add(req);
          res.on("close", () => this.open.delete(req));
          res.writeHead(200, { "content-type": "text/event-stream" });
          const timer = setInterval(() => res.write("data: {}\n\n"), 20);
          res.on("close", () => clearInterval(timer));
        } else {
          res.writeHead(200, {
            "content-type": "application/json",
            "access-control-allow-origin": "*",
          });
          res.end(JSON.stringify({ url: req.url, bytes }));
        }
      });
    });
    // A WebSocket-style upgrade that echoes every byte back.
    this.server.on("upgrade", (req, socket: Socket, head) => {
      this.received.push({ method: req.method, url: req.url, headers: req.headers, bytes: 0 });
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n",
      );
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(5700, this.host, resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  last() {
    return this.received.at(-1);
  }
}

describe("gateway proxy mechanics", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let pod: PodServer;
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;
  const url = (path: string) => `${http.url}${instance.endpoint.path}${path}`;
  const auth = () => ({ authorization: `Bearer ${instance.endpoint.token}` });

  beforeAll(async () => {
    namespace = await createTestNamespace("gwproxy");
    await installTemplate(namespace);
    handler = startHandler(namespace, {
      ACTIVITY_INTERVAL: "1s",
      PROXY_TIMEOUT: "1s",
      PROXY_MAX_BODY: "1Ki",
      CORS_ORIGINS: `${UI},https://app.example.com`,
    });
    http = await listenHandler(handler);
    // The instance's "server" listens at its pod IP; then the instance is ready.
    const starting = await (
      await handler.request("/instances/default?wait=0", { apiKey: KEY })
    ).json();
    pod = new PodServer(await podIpOf(namespace, starting.name));
    await pod.listen();
    instance = await (await handler.request("/instances/default?wait=30", { apiKey: KEY })).json();
    pod.received.length = 0;
  });

  afterAll(async () => {
    await pod?.close();
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

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

  it("refuses bodies over PROXY_MAX_BODY, with or without a length, before the pod has them", async () => {
    const before = pod.received.length;
    const sized = await fetch(url("/api/v2/upload"), {
      method: "POST",
      headers: auth(),
      body: "x".repeat(2048),
    });
    expect(sized.status).toBe(413);
    expect(((await sized.json()) as { code: string }).code).toBe("body_too_large");
    expect(pod.received.length).toBe(before);

    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode("y".repeat(512)));
        controller.close();
      },
    });
    const streamed = await fetch(url("/api/v2/upload"), {
      method: "POST",
      headers: auth(),
      body: chunks,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    // Within the bound, a streamed body arrives whole.
    const small = await fetch(url("/api/v2/upload"), {
      method: "POST",
      headers: auth(),
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("z".repeat(1000)));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(small.status).toBe(200);
    expect(((await small.json()) as { bytes: number }).bytes).toBe(1000);
  });

  it("answers 504 instance_timeout when the pod sends no headers within PROXY_TIMEOUT", async () => {
    const started = performance.now();
    const response = await fetch(url("/hang"), { headers: auth() });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { code: string }).code).toBe("instance_timeout");
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(performance.now() - started).toBeLessThan(3_000);
    // ...and frees the pod's connection.
    await eventually(
      async () => ([...pod.open].every((r) => r.destroyed) ? true : undefined),
      "upstream closed",
    );
  });

  it("keeps an open stream alive past PROXY_TIMEOUT and refreshes lastActivity while it is open", async () => {
    // The ClientPod's lastActivity: the truth the reaper reads (the Pod's mirror is not
    // rewritten for activity alone).
    const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
    const mirror = async () =>
      (
        (await custom.getNamespacedCustomObject({
          group: "gptme.ai",
          version: "v1",
          namespace,
          plural: "clientpods",
          name: instance.name,
        })) as { status?: { lastActivity?: string } }
      ).status?.lastActivity ?? "";
    const abort = new AbortController();
    const response = await fetch(url("/stream"), { headers: auth(), signal: abort.signal });
    const reader = response.body?.getReader();
    const first = await mirror();
    let bytes = 0;
    const until = Date.now() + 3_500;
    while (Date.now() < until) bytes += (await reader?.read())?.value?.length ?? 0;
    expect(bytes).toBeGreaterThan(0);
    const during = await mirror();
    expect(Date.parse(during)).toBeGreaterThan(Date.parse(first));
    abort.abort();
    await eventually(
      async () => (pod.open.size === 0 ? true : undefined),
      "upstream stream closed",
    );
    expect(handler.fleet.gateway.openExchanges).toBe(0);
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await mirror();
    // One write may have been on its way when the stream closed; none after that.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await mirror()).toBe(after);
  });

  it("frees the pod's side of every aborted stream: 1,000 aborts leave nothing open", async () => {
    const listenersBefore = process.listenerCount("exit");
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const abort = new AbortController();
          const response = await fetch(url("/stream"), { headers: auth(), signal: abort.signal });
          await response.body?.getReader().read();
          abort.abort();
        }),
      );
    }
    await eventually(
      async () => (pod.open.size === 0 ? true : undefined),
      "all upstream streams closed",
      10_000,
    );
    await eventually(
      async () => (handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "all gateway exchanges closed",
    );
    const connections = await new Promise<number>((resolve) =>
      pod.server.getConnections((_e, n) => resolve(n)),
    );
    expect(connections).toBeLessThanOrEqual(1);
    expect(process.listenerCount("exit")).toBe(listenersBefore);
  });

  it("ends the client's stream when the pod goes away", async () => {
    const response = await fetch(url("/stream"), { headers: auth() });
    const reader = response.body?.getReader();
    expect((await reader?.read())?.done).toBe(false);
    const ended = (async () => {
      try {
        for (;;) if ((await reader?.read())?.done) return "done";
      } catch {
        return "cut";
      }
    })();
    await pod.close();
    expect(["done", "cut"]).toContain(await ended);
    await eventually(
      async () => (handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "the exchange to close",
    );
    pod = new PodServer(instance.connection.host);
    await pod.listen();
  });

  it("answers 502 instance_unreachable when nothing listens at the pod", async () => {
    await pod.close();
    const response = await fetch(url("/api/v2/x"), { headers: auth() });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { code: string }).code).toBe("instance_unreachable");
    pod = new PodServer(instance.connection.host);
    await pod.listen();
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
