import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
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

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: url, skipTLSVerify: true }],
    users: [{ name: "u", token: "secret-token" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

describe("KubeTransport", () => {
  it("sends the kubeconfig's credentials, reading them once for many calls on one connection", async () => {
    const kc = kubeConfig();
    const reads = vi.spyOn(kc, "applySecurityAuthentication");
    const seen: string[] = [];
    handle = (req, res) => {
      seen.push(String(req.headers.authorization));
      res.end("{}");
    };
    const transport = new KubeTransport(kc, 5_000);
    for (let i = 0; i < 20; i++) expect((await transport.get("/api/v1/x")).status).toBe(200);
    transport.close();
    expect(seen).toEqual(Array(20).fill("Bearer secret-token"));
    expect(reads).toHaveBeenCalledTimes(1);
    expect(connections).toBe(1);
  });

  it("reads the credentials again once they are a second old, and right after a 401", async () => {
    const kc = kubeConfig();
    const reads = vi.spyOn(kc, "applySecurityAuthentication");
    const transport = new KubeTransport(kc, 5_000);
    await transport.get("/a");
    const now = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(now + 1_500);
    await transport.get("/b");
    expect(reads).toHaveBeenCalledTimes(2);
    handle = (_req, res) => {
      res.statusCode = 401;
      res.end("{}");
    };
    expect((await transport.get("/c")).status).toBe(401);
    await transport.get("/d");
    expect(reads).toHaveBeenCalledTimes(3);
    transport.close();
  });

  it("sends a request body with its length", async () => {
    let received: { method?: string; length?: string; body?: string } = {};
    handle = (req, res, body) => {
      received = { method: req.method, length: req.headers["content-length"], body };
      res.end("{}");
    };
    const transport = new KubeTransport(kubeConfig(), 5_000);
    const context = new RequestContext(`${url}/apis/x`, HttpMethod.POST);
    context.setBody('{"name":"é"}');
    await transport.applySecurityAuthentication(context);
    expect((await transport.send(context)).httpStatusCode).toBe(200);
    transport.close();
    expect(received).toEqual({ method: "POST", length: "13", body: '{"name":"é"}' });
  });

  it("refuses a body it cannot send as text rather than dropping it", async () => {
    const transport = new KubeTransport(kubeConfig(), 5_000);
    const context = new RequestContext(`${url}/apis/x`, HttpMethod.POST);
    context.setBody(new URLSearchParams({ a: "b" }));
    await expect(transport.send(context)).rejects.toBeInstanceOf(TypeError);
    transport.close();
  });

  it("gives up on a server that does not answer within the timeout", async () => {
    handle = () => undefined;
    const transport = new KubeTransport(kubeConfig(), 200);
    const started = Date.now();
    await expect(transport.get("/hangs")).rejects.toBeInstanceOf(CallTimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
    transport.close();
  });
});
