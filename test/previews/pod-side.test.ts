import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SESSION_COOKIE } from "../../handler/previews/session.js";
import { eventually } from "../support/cluster.js";
import { listenHandler, startHandler, type TestHandler } from "../support/fleet.js";
import { assertLocal, podIpOf } from "../support/gptme.js";
import {
  cookiePair,
  PREVIEW_DOMAIN,
  type PreviewHandler,
  previewRequest,
  startPreviewHandler,
} from "../support/preview.js";
import { rawUpgrade } from "../support/upgrade.js";

const KEY = "preview-key-0000001";

// biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
type Instance = any;

/**
 * What the pod receives and may answer, seen from a plain server standing at an instance's
 * pod IP in place of gptme-server (as test/support/pod-server.ts does for the gateway): the
 * fleet's own part.
 */
describe("previews, as the pod sees them", () => {
  let fleet: PreviewHandler;
  let namespace: string;
  let handler: TestHandler;
  let http: PreviewHandler["http"];
  let instance: Instance;
  let pod: Server;
  const received: { url?: string; headers: IncomingMessage["headers"] }[] = [];

  beforeAll(async () => {
    fleet = await startPreviewHandler("previewpod");
    ({ namespace, handler, http } = fleet);
    // The plain server listens at the pod IP in place of gptme-server; then the instance is ready.
    const starting: Instance = await (
      await handler.request("/instances/raw?wait=0", { apiKey: KEY })
    ).json();
    const podIp = await podIpOf(namespace, starting.name);
    assertLocal(podIp);
    pod = createServer((req, res) => {
      received.push({ url: req.url, headers: req.headers });
      if (req.url?.endsWith("/redirect")) {
        // gptme-server's own redirects are absolute, to its Host.
        res.writeHead(308, { location: `http://${req.headers.host}/preview/3000/next/` });
        res.end();
        return;
      }
      res.writeHead(200, {
        "content-type": "text/plain",
        "set-cookie": [`${SESSION_COOKIE}=forged; Path=/`, "gptme_auth=x; Path=/preview/"],
      });
      res.end("from the pod");
    });
    pod.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      received.push({ url: req.url, headers: req.headers });
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n",
      );
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => pod.listen(5700, podIp, resolve));
    const ready = await handler.request("/instances/raw?wait=30", { apiKey: KEY });
    expect(ready.status).toBe(200);
    instance = await ready.json();
    expect(instance.connection.host).toBe(podIp);
    // Only what the tests send counts, not the fleet's health checks.
    received.length = 0;
  }, 120_000);

  afterAll(async () => {
    pod?.closeAllConnections();
    await new Promise((resolve) => pod?.close(resolve));
    await fleet?.close();
  });

  it("forwards with the instance's token, keeps the fleet's cookie and the pod's cookies out", async () => {
    const res = await handler.request(`/instances/raw/previews/3000`, {
      method: "POST",
      apiKey: KEY,
    });
    const url = new URL(((await res.json()) as { url: string }).url);
    const signedIn = await previewRequest(http.url, url.host, url.pathname + url.search);
    const cookie = cookiePair(signedIn.headers["set-cookie"]);
    const answer = await previewRequest(http.url, url.host, "/x?y=1", {
      headers: { cookie: `theirs=1; ${cookie}; other=2`, authorization: "Bearer nope" },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe("from the pod");
    expect(answer.headers["set-cookie"]).toBeUndefined();
    const seen = received.at(-1);
    expect(seen?.url).toBe("/preview/3000/x?y=1");
    expect(seen?.headers.authorization).toBe(`Bearer ${instance.endpoint.token}`);
    expect(seen?.headers.cookie).toBe("theirs=1; other=2");
    expect(seen?.headers["x-forwarded-host"]).toBe(url.host);
    // The pod's redirect to its own /preview/3000/... is the preview host's /... .
    const redirect = await previewRequest(http.url, url.host, "/redirect", {
      headers: { cookie },
    });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe("/next/");

    // A WebSocket upgrade reaches the pod unchanged but for the credentials, and echoes.
    const { head, socket } = await rawUpgrade(
      http.url,
      "/ws?z=1",
      `Cookie: ${cookie}\r\n`,
      url.host,
    );
    expect(head).toMatch(/^HTTP\/1.1 101/);
    expect(received.at(-1)?.url).toBe("/preview/3000/ws?z=1");
    expect(received.at(-1)?.headers.authorization).toBe(`Bearer ${instance.endpoint.token}`);
    expect(received.at(-1)?.headers.cookie).toBeUndefined();
    const echoed = new Promise<string>((resolve) => socket.once("data", (d) => resolve(String(d))));
    socket.write("ping over the preview host");
    expect(await echoed).toBe("ping over the preview host");
    expect(handler.fleet.previews?.openExchanges).toBe(1);
    socket.destroy();
    await eventually(
      async () => (handler.fleet.previews?.openExchanges === 0 ? true : undefined),
      "the upgraded exchange to close",
    );
  });

  it("links over https and marks the session Secure when PUBLIC_URL is https", async () => {
    const secure = startHandler(namespace, {
      PREVIEW_DOMAIN,
      PUBLIC_URL: "https://fleet.example.com",
    });
    const served = await listenHandler(secure);
    try {
      const res = await secure.request("/instances/raw/previews/3000", {
        method: "POST",
        apiKey: KEY,
      });
      const url = new URL(((await res.json()) as { url: string }).url);
      expect(url.origin).toBe(`https://3000-${instance.name}.${PREVIEW_DOMAIN}`);
      const signedIn = await previewRequest(served.url, url.host, url.pathname + url.search);
      expect(signedIn.status).toBe(302);
      expect(String(signedIn.headers["set-cookie"])).toMatch(/; HttpOnly; SameSite=Lax; Secure$/);
    } finally {
      await served.close();
      secure.close();
    }
  });
});
