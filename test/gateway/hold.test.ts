import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, deleteTestNamespace, eventually } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { assertLocal, podIpOf } from "../support/gptme.js";

const KEY = "gateway-hold-key-0001";

// A request held for a starting instance whose client goes away meanwhile: once the instance
// serves, nothing is forwarded for it and nothing stays open (an exchange left open would
// count as activity for ever).
describe("a held request whose client leaves", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let pod: Server | undefined;

  beforeAll(async () => {
    namespace = await createTestNamespace("gwhold");
    await installTemplate(namespace);
    handler = startHandler(namespace, { GATEWAY_HOLD: "30s" });
    http = await listenHandler(handler);
  });

  afterAll(async () => {
    pod?.closeAllConnections();
    await new Promise((resolve) => pod?.close(resolve));
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("forwards nothing and keeps nothing open once the instance serves", async () => {
    const instance = await (
      await handler.request("/instances/default?wait=0", { apiKey: KEY })
    ).json();
    const ip = await podIpOf(namespace, instance.name);
    assertLocal(ip);
    const abort = new AbortController();
    const held = fetch(`${http.url}${instance.endpoint.path}/api/v2/conversations`, {
      headers: { authorization: `Bearer ${instance.endpoint.token}` },
      signal: abort.signal,
    }).catch((error: Error) => error.name);
    await new Promise((resolve) => setTimeout(resolve, 500));
    abort.abort();
    expect(await held).toBe("AbortError");
    const seen: IncomingMessage["url"][] = [];
    pod = createServer((req, res) => {
      seen.push(req.url);
      res.end("[]");
    });
    await new Promise<void>((resolve) => pod?.listen(5700, ip, resolve));
    // The instance serves (a request of another client is answered).
    const ready = await eventually(async () => {
      const answer = await fetch(`${http.url}${instance.endpoint.path}/api/v2/x`, {
        headers: { authorization: `Bearer ${instance.endpoint.token}` },
      });
      return answer.status === 200 ? answer : undefined;
    }, "the instance to serve");
    expect(ready.status).toBe(200);
    // The health checks and that one request reached the pod; the abandoned one did not.
    expect(seen.filter((url) => url === "/api/v2/conversations")).toEqual([]);
    await eventually(
      async () => (handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "no exchange open",
    );
    // The abandoned request is still counted and logged, as one the client closed (499).
    const abandoned = handler.logs.lines
      .map((line) => JSON.parse(line) as { msg?: string; status?: number; instance?: string })
      .filter((line) => line.msg === "request" && line.instance === instance.name);
    expect(abandoned.map((line) => line.status)).toContain(499);
  }, 60_000);
});
