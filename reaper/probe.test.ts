import { createServer, type Server } from "node:http";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { probeInstance } from "./probe.js";

// The probe's I/O against listeners on loopback that misbehave in the ways a pod can; what a
// real gptme-server answers is the integration tests' business (test/reaper/probe.test.ts).
describe("probeInstance", () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  const listen = async (server: Server | ReturnType<typeof createTcpServer>) => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    return { host: "127.0.0.1", port: (server.address() as AddressInfo).port };
  };

  it("returns both answers, each from its own path", async () => {
    const server = createServer((req, res) => res.end(`you asked ${req.url}`));
    closers.push(() => server.closeAllConnections());
    const result = await probeInstance(await listen(server), 1_000);
    expect(result).toEqual({
      health: { status: 200, body: "you asked /api/v2/server/health" },
      metrics: { status: 200, body: "you asked /api/v0/metrics" },
    });
  });

  it("gives up on a server that accepts and never answers, within the bound", async () => {
    const sockets: Socket[] = [];
    const server = createTcpServer((socket) => sockets.push(socket));
    closers.push(() => {
      for (const socket of sockets) socket.destroy();
    });
    const started = performance.now();
    const result = await probeInstance(await listen(server), 300);
    const took = performance.now() - started;
    expect(result).toEqual({
      health: { error: "no answer within 300 ms" },
      metrics: { error: "no answer within 300 ms" },
    });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1_000);
  });

  it("gives up on an answer that starts and never ends, within the bound", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("gptme_server_sse_connections_active ");
    });
    closers.push(() => server.closeAllConnections());
    const started = performance.now();
    const result = await probeInstance(await listen(server), 300);
    expect(result.metrics).toEqual({ error: "no answer within 300 ms" });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("reports a refused connection as such, at once", async () => {
    const server = createTcpServer();
    const target = await listen(server);
    server.close();
    const started = performance.now();
    const result = await probeInstance(target, 2_000);
    expect(result).toEqual({
      health: { error: "ECONNREFUSED" },
      metrics: { error: "ECONNREFUSED" },
    });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("stops reading an answer far longer than any gptme-server's", async () => {
    const server = createServer((_req, res) => {
      const chunk = "x".repeat(64 * 1024);
      const pump = () => {
        while (res.write(chunk)) {}
        res.once("drain", pump);
      };
      pump();
    });
    closers.push(() => server.closeAllConnections());
    const result = await probeInstance(await listen(server), 2_000);
    expect(result.health).toEqual({ error: "answer longer than 262144 bytes" });
  });
});
