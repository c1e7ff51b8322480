import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { createTestNamespace, deleteTestNamespace } from "./cluster.js";
import { installTemplate, listenHandler, startHandler, type TestHandler } from "./fleet.js";
import { assertLocal, podIpOf } from "./gptme.js";

/**
 * The proxy's own mechanics (headers, redirects, limits, timeouts, aborts, upgrades), seen
 * from a minimal HTTP server standing at an instance's loopback pod IP, which reports what
 * it received. What gptme-server itself does is tested against the real one
 * (test/gateway/gateway.test.ts).
 */
export class PodServer {
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

/** An instance whose "server" is a PodServer, behind a handler listening on HTTP. */
export interface InstanceAtPodServer {
  namespace: string;
  handler: TestHandler;
  http: { url: string; close(): Promise<void> };
  pod: PodServer;
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  instance: any;
  /** A gateway URL of the instance, from the handler's address: its prefix, then `path`. */
  url(path: string): string;
  /** The instance's token as a client sends it. */
  auth(): { authorization: string };
  close(): Promise<void>;
}

/** A web UI's origin, allowed by GATEWAY_TEST_ENV's CORS_ORIGINS. */
export const UI_ORIGIN = "http://127.0.0.1:5173";

/** The gateway's settings its proxy tests run with: short bounds, two allowed origins. */
export const GATEWAY_TEST_ENV = {
  ACTIVITY_INTERVAL: "1s",
  PROXY_TIMEOUT: "1s",
  PROXY_MAX_BODY: "1Ki",
  CORS_ORIGINS: `${UI_ORIGIN},https://app.example.com`,
};

/**
 * A namespace of its own, a handler with `env` (on HTTP), and one instance of `apiKey` whose
 * pod IP a PodServer listens at: ready, with nothing received yet.
 */
export async function instanceAtPodServer(
  namespacePrefix: string,
  apiKey: string,
  env: Record<string, string>,
): Promise<InstanceAtPodServer> {
  const namespace = await createTestNamespace(namespacePrefix);
  await installTemplate(namespace);
  const handler = startHandler(namespace, env);
  const http = await listenHandler(handler);
  const starting = await (await handler.request("/instances/default?wait=0", { apiKey })).json();
  const pod = new PodServer(await podIpOf(namespace, starting.name));
  await pod.listen();
  const instance = await (await handler.request("/instances/default?wait=30", { apiKey })).json();
  pod.received.length = 0;
  return {
    namespace,
    handler,
    http,
    pod,
    instance,
    url: (path) => `${http.url}${instance.endpoint.path}${path}`,
    auth: () => ({ authorization: `Bearer ${instance.endpoint.token}` }),
    close: async () => {
      await pod.close();
      await http.close();
      handler.close();
      await deleteTestNamespace(namespace);
    },
  };
}
