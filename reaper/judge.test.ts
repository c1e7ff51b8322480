import { createServer, type Server } from "node:http";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { probeWithRetries } from "./judge.js";

// The probe's retries while the reaper's own address may not be admitted yet. Their state is
// the process's (has any gptme-server answered it?), so these run in order, in one file.
describe("probeWithRetries", () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** A port nothing listens on yet: connections to it are refused. */
  const freePort = async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return port;
  };

  /** A gptme-server with one event stream open, on `port` from `afterMs` on. */
  const busyServerLater = (port: number, afterMs: number) =>
    setTimeout(() => {
      const server = createServer((req, res) =>
        res.end(
          req.url === "/api/v0/metrics"
            ? "gptme_server_sse_connections_active 1.0\n"
            : JSON.stringify({ generating_count: 0 }),
        ),
      );
      servers.push(server);
      server.listen(port, "127.0.0.1");
    }, afterMs);

  it("before any answer, waits for an address refused at first (up to admissionWaitMs)", async () => {
    const port = await freePort();
    busyServerLater(port, 1_200);
    const verdict = await probeWithRetries(
      { host: "127.0.0.1", port },
      { timeoutMs: 500, admissionWaitMs: 5_000 },
    );
    expect(verdict).toEqual({ verdict: "busy", generating: 0, sseConnections: 1 });
  });

  it("once some server answered, gives a refused address only half the probe's bound", async () => {
    const port = await freePort();
    const started = performance.now();
    const verdict = await probeWithRetries(
      { host: "127.0.0.1", port },
      { timeoutMs: 500, admissionWaitMs: 5_000 },
    );
    expect(verdict).toEqual({
      verdict: "unreachable",
      unreachable: "health: ECONNREFUSED; metrics: ECONNREFUSED",
    });
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
