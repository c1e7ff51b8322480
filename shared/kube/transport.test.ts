import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { KubeCredentials } from "./credentials.js";
import { CallTimeoutError, KubeTransport } from "./transport.js";

// A local HTTP server stands in for the API server: these tests are about the transport's own
// behaviour (connections, credentials, timeouts), which a real API server cannot be made to
// misbehave for on demand.
let server: Server;
let url: string;
let handle: (req: IncomingMessage, res: ServerResponse, body: string) => void;
let connections: number;

beforeEach(async () => {
  connections = 0;
  handle = (_req, res) => res.end('{"ok":true}');
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => handle(req, res, body));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  vi.restoreAllMocks();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Bearer-token credentials that count how often they are read. */
function credentials(): KubeCredentials & { reads: number } {
  const source = {
    server: url,
    reads: 0,
    async read() {
      source.reads++;
      return { headers: { Authorization: "Bearer secret-token" }, tls: {} };
    },
  };
  return source;
}

describe("KubeTransport", () => {
  it("sends the credentials, reading them once for many calls on one connection", async () => {
    const source = credentials();
    const seen: string[] = [];
    handle = (req, res) => {
      seen.push(String(req.headers.authorization));
      res.end("{}");
    };
    const transport = new KubeTransport(source, 5_000);
    for (let i = 0; i < 20; i++) expect((await transport.get("/api/v1/x")).status).toBe(200);
    transport.close();
    expect(seen).toEqual(Array(20).fill("Bearer secret-token"));
    expect(source.reads).toBe(1);
    expect(connections).toBe(1);
  });

  it("reads the credentials again once they are a second old, and right after a 401", async () => {
    const source = credentials();
    const transport = new KubeTransport(source, 5_000);
    await transport.get("/a");
    const now = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(now + 1_500);
    await transport.get("/b");
    expect(source.reads).toBe(2);
    handle = (_req, res) => {
      res.statusCode = 401;
      res.end("{}");
    };
    expect((await transport.get("/c")).status).toBe(401);
    await transport.get("/d");
    expect(source.reads).toBe(3);
    transport.close();
  });

  it("sends a request body with its length and type", async () => {
    let received: { method?: string; length?: string; type?: string; body?: string } = {};
    handle = (req, res, body) => {
      const { "content-length": length, "content-type": type } = req.headers;
      received = { method: req.method, length, type, body };
      res.end("{}");
    };
    const transport = new KubeTransport(credentials(), 5_000);
    const answer = await transport.request(
      "PATCH",
      "/apis/x",
      '{"name":"é"}',
      "application/merge-patch+json",
    );
    expect(answer.status).toBe(200);
    transport.close();
    expect(received).toEqual({
      method: "PATCH",
      length: "13",
      type: "application/merge-patch+json",
      body: '{"name":"é"}',
    });
  });

  it("keeps the path of a server URL that has one (an API server behind a proxy)", async () => {
    const paths: string[] = [];
    handle = (req, res) => {
      paths.push(String(req.url));
      res.end("{}");
    };
    const source = { ...credentials(), server: `${url}/k8s/clusters/c-1/` };
    const transport = new KubeTransport(source, 5_000);
    await transport.get("/api/v1/namespaces/x/pods?limit=1");
    transport.close();
    expect(paths).toEqual(["/k8s/clusters/c-1/api/v1/namespaces/x/pods?limit=1"]);
  });

  it("gives up on a server that does not answer within the timeout", async () => {
    handle = () => undefined;
    const transport = new KubeTransport(credentials(), 200);
    const started = Date.now();
    await expect(transport.get("/hangs")).rejects.toBeInstanceOf(CallTimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
    transport.close();
  });
});
