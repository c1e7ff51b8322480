import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { InstanceProxy } from "./proxy.js";

const servers: Server[] = [];
const listen = async (server: Server) => {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
};

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

// gptme-server answers `Connection: close`: each answer ends its connection, which undici
// closes with an error of its own, made without a stack trace; the limit comes back at once.
describe("a pod that closes every connection", () => {
  it("answers each request, and errors made afterwards have their stack again", async () => {
    const seen: string[] = [];
    const pod = await listen(
      createServer((req, res) => {
        seen.push(`${req.url} ${req.headers.authorization}`);
        res.writeHead(200, { connection: "close", "content-type": "application/json" });
        res.end('{"ok":true}');
      }),
    );
    const proxy = new InstanceProxy({ timeoutMs: 5_000, maxBodyBytes: 1024 });
    const limit = Error.stackTraceLimit;
    const front = await listen(
      createServer((req, res) => {
        proxy.web(
          req,
          res,
          {
            host: "127.0.0.1",
            port: pod,
            authorization: "Bearer pod-token",
            prefix: "/p",
            upstreamPath: req.url ?? "/",
            responseHeaders: {},
          },
          (failure) => res.writeHead(502).end(failure.message),
        );
      }),
    );
    for (let i = 0; i < 3; i++) {
      const answer = await fetch(`http://127.0.0.1:${front}/x${i}`);
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ ok: true });
      expect(answer.headers.get("connection")).not.toBe("close");
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(seen).toEqual(["/x0 Bearer pod-token", "/x1 Bearer pod-token", "/x2 Bearer pod-token"]);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error("later").stack).toContain("proxy.test.ts");
    proxy.close();
  });
});
