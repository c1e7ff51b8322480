import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createTestNamespace, deleteTestNamespace } from "./cluster.js";
import { installTemplate, listenHandler, startHandler, type TestHandler } from "./fleet.js";
import { freePort } from "./process.js";

/** The preview hosts' domain in tests: every host under it resolves to this machine. */
export const PREVIEW_DOMAIN = "preview.localhost";

/** A handler serving preview hosts, on a real port, in a namespace of its own. */
export interface PreviewHandler {
  namespace: string;
  handler: TestHandler;
  http: { url: string; close(): Promise<void> };
  /** The port it listens on (in preview hosts' `Host`, and its PUBLIC_URL). */
  listening: number;
  close(): Promise<void>;
}

export async function startPreviewHandler(
  prefix: string,
  env: Record<string, string> = {},
): Promise<PreviewHandler> {
  const namespace = await createTestNamespace(prefix);
  await installTemplate(namespace);
  const listening = await freePort();
  const handler = startHandler(namespace, {
    PREVIEW_DOMAIN,
    PUBLIC_URL: `http://127.0.0.1:${listening}`,
    ...env,
  });
  const http = await listenHandler(handler, listening);
  return {
    namespace,
    handler,
    http,
    listening,
    async close() {
      await http.close();
      handler.close();
      await deleteTestNamespace(namespace);
    },
  };
}

/** An answer read whole: status, headers, body. */
export interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

/**
 * One request to `base` (the handler, or Traefik) as a browser on a preview host sends it:
 * the preview host in the Host header, whatever address it resolves to.
 */
export function previewRequest(
  base: string,
  host: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path,
        method: init.method ?? "GET",
        headers: { host, ...init.headers },
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The `name=value` of a Set-Cookie header (what a browser sends back). */
export const cookiePair = (setCookie: string | string[] | undefined): string =>
  String([setCookie ?? ""].flat()[0]).split(";")[0] ?? "";

/**
 * An app an agent started inside an instance: an HTTP server on 127.0.0.1 (a KWOK pod's
 * loopback is this machine's, where gptme-server's preview proxy connects), recording what it
 * received and trying to set a cookie, as an untrusted app may.
 */
export class PreviewApp {
  readonly received: { url?: string; headers: IncomingMessage["headers"] }[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(private readonly title: string) {}

  async listen(): Promise<this> {
    const server = createServer((req, res) => {
      this.received.push({ url: req.url, headers: req.headers });
      if (req.url?.startsWith("/go-home")) {
        res.writeHead(302, { location: "/" }).end();
        return;
      }
      if (req.url?.startsWith("/app.js") || req.url?.startsWith("/module.js")) {
        const id = req.url.startsWith("/app.js") ? "script" : "module";
        res.writeHead(200, { "content-type": "text/javascript", "set-cookie": "app=1; Path=/" });
        res.end(`document.getElementById("${id}").textContent = "${id} ran";`);
        return;
      }
      if (req.url?.startsWith("/data")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: "from the app" }));
        return;
      }
      res.writeHead(200, { "content-type": "text/html", "set-cookie": "app=1; Path=/" });
      res.end(
        `<!doctype html><html><head><title>${this.title}</title></head><body>` +
          `<h1 id="title">${this.title}</h1><p id="path">${req.url}</p>` +
          `<p id="script"></p><p id="module"></p><p id="fetched"></p>` +
          `<script src="/app.js"></script><script type="module" src="/module.js"></script>` +
          `<script>fetch("/data").then((r) => r.json()).then((d) => {` +
          `document.getElementById("fetched").textContent = d.data; });</script></body></html>`,
      );
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  last() {
    return this.received.at(-1);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
