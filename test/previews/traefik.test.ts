import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODE_PARAMETER } from "../../handler/previews/link.js";
import { SESSION_COOKIE } from "../../handler/previews/session.js";
import { HEALTH_PATH } from "../../shared/instance/serving.js";
import { chromiumFor, launchChromium } from "../support/browser.js";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath } from "../support/cluster.js";
import { installTemplate } from "../support/fleet.js";
import {
  assertLocal,
  type GptmeServer,
  podIpOf,
  startInstanceWithServer,
} from "../support/gptme.js";
import { cookiePair, PreviewApp, previewRequest } from "../support/preview.js";
import { freePort, type HandlerProcess, spawnHandler, waitHealthy } from "../support/process.js";
import { startTraefik, type TestTraefik } from "../support/traefik.js";
import { rawUpgrade } from "../support/upgrade.js";

const KEY = "preview-traefik-key-01";
const DOMAIN = "preview.localhost";
const CHROMIUM_HERE = chromiumFor("previews through Traefik in a browser");

interface Link {
  url: string;
  expiresAt: string;
}

// The whole flow through the real Traefik (the repo's IngressRoutes, read by its Kubernetes
// CRD provider) to the built handler, as a browser follows it: headless Chromium resolves
// *.localhost to loopback, so preview hosts need no DNS here.
describe.skipIf(!CHROMIUM_HERE)("previews through Traefik, in Chromium", () => {
  let namespace: string;
  let handler: HandlerProcess;
  let traefik: TestTraefik | undefined;
  let base: string;
  let traefikPort: number;
  let browser: Browser | undefined;
  let gptme: GptmeServer | undefined;
  let app: PreviewApp;
  let rawPod: Server | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;

  const previewLink = async (instanceId: string, port: number): Promise<Link> => {
    const res = await fetch(`${base}/api/v1/${KEY}/instances/${instanceId}/previews/${port}`, {
      method: "POST",
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Link;
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("prevtraefik");
    await installTemplate(namespace);
    const handlerPort = await freePort();
    traefikPort = await freePort();
    base = `http://127.0.0.1:${traefikPort}`;
    handler = spawnHandler({
      KUBECONFIG: kubeconfigPath(),
      NAMESPACE: namespace,
      HTTP_PORT: String(handlerPort),
      PUBLIC_URL: base,
      PREVIEW_DOMAIN: DOMAIN,
    });
    await waitHealthy(handler);
    traefik = await startTraefik(
      namespace,
      traefikPort,
      handlerPort,
      `/api/v1/${KEY}/instances/web?wait=0`,
      ["09-traefik-route.yaml", "10-traefik-previews.yaml"],
    );
    const started = await startInstanceWithServer(namespace, (wait) =>
      fetch(`${base}/api/v1/${KEY}/instances/web?wait=${wait}`),
    );
    instance = started.instance;
    gptme = started.server;
    app = await new PreviewApp("the agent's app").listen();
    browser = await launchChromium();
  }, 15 * 60_000);

  afterAll(async () => {
    await browser?.close();
    await gptme?.stop();
    await app?.close();
    rawPod?.closeAllConnections();
    await new Promise((r) => (rawPod ? rawPod.close(r) : r(undefined)));
    traefik?.stop();
    handler?.proc.kill("SIGTERM");
    await deleteTestNamespace(namespace);
  });

  it("opens the app after the sign-in link, with no code left in the address bar", async () => {
    const link = await previewLink("web", app.port);
    const host = `${app.port}-${instance.name}.${DOMAIN}`;
    expect(link.url).toMatch(new RegExp(`^http://${host}:${traefikPort}/\\?${CODE_PARAMETER}=`));
    const code = new URL(link.url).searchParams.get(CODE_PARAMETER) ?? "";

    const context = await (browser as Browser).createBrowserContext();
    const page = await context.newPage();
    const answer = await page.goto(link.url);
    expect(answer?.status()).toBe(200);
    expect(page.url()).toBe(`http://${host}:${traefikPort}/`);
    expect(page.url()).not.toContain(code);
    expect(await page.$eval("#title", (e) => e.textContent)).toBe("the agent's app");
    // Everything the page loads from its own host carries the session too: a classic script,
    // a module script and a fetch (each refused without it).
    await page.waitForFunction(
      () =>
        document.getElementById("script")?.textContent === "script ran" &&
        document.getElementById("module")?.textContent === "module ran" &&
        document.getElementById("fetched")?.textContent === "from the app",
      { timeout: 10_000 },
    );
    expect(
      app.received.filter((r) => ["/app.js", "/module.js", "/data"].includes(r.url ?? "")),
    ).toHaveLength(3);

    // One cookie in the browser: the session, for exactly this host, out of scripts' reach.
    const cdp = await page.createCDPSession();
    const { cookies } = (await cdp.send("Network.getAllCookies")) as {
      cookies: {
        name: string;
        domain: string;
        httpOnly: boolean;
        sameSite?: string;
        path: string;
      }[];
    };
    expect(cookies).toEqual([
      expect.objectContaining({
        name: SESSION_COOKIE,
        domain: host,
        httpOnly: true,
        sameSite: "Lax",
        path: "/",
      }),
    ]);
    // The preview's origin cannot use the API with the browser's credentials: it has none
    // there, and the gateway does not let that origin read its answers.
    const fromPreview = await page.evaluate(async (url) => {
      try {
        const res = await fetch(url, { credentials: "include" });
        return `read ${res.status}`;
      } catch {
        return "blocked";
      }
    }, `${base}${instance.endpoint.path}/api/v2/conversations`);
    expect(fromPreview).toBe("blocked");

    // The same link again, in a fresh browser: spent.
    const other = await (browser as Browser).createBrowserContext();
    const second = await other.newPage();
    const refused = await second.goto(link.url);
    expect(refused?.status()).toBe(401);
    expect(await second.content()).toContain("Open this preview from your gptme client");
    await other.close();
    await context.close();
  });

  it("keeps every path of a preview host, /api/v1/... included, on the preview", async () => {
    const link = new URL((await previewLink("web", app.port)).url);
    const signedIn = await previewRequest(base, link.host, link.pathname + link.search);
    expect(signedIn.status).toBe(302);
    const cookie = cookiePair(signedIn.headers["set-cookie"]);
    for (const path of [`/api/v1/${KEY}/instances/web`, `${instance.endpoint.path}/api/v2`]) {
      const answer = await previewRequest(base, link.host, path, { headers: { cookie } });
      expect(answer.status, path).toBe(200);
      expect(app.last()?.url).toBe(path);
      expect(app.last()?.headers["x-api-key"]).toBeUndefined();
    }
    // Hosts outside the pattern are not routed to the handler at all.
    const stray = await previewRequest(base, `80-${instance.name}.${DOMAIN}`, "/");
    expect(stray.status).toBe(404);
  });

  it("carries a WebSocket upgrade on the preview host to the pod and echoes both ways", async () => {
    // A raw upgrade server stands at another instance's pod address, in gptme-server's place
    // (0.35.1 cannot tunnel under Werkzeug: previews.test.ts pins its 400).
    // It stands at the pod IP and answers the health check; then the instance is ready.
    const starting = (await (await fetch(`${base}/api/v1/${KEY}/instances/raw?wait=0`)).json()) as {
      name: string;
    };
    const podIp = await podIpOf(namespace, starting.name);
    assertLocal(podIp);
    const seen: IncomingMessage[] = [];
    rawPod = createServer((req, r) =>
      req.url === HEALTH_PATH
        ? r.writeHead(200, { "content-type": "application/json" }).end("{}")
        : r.writeHead(404).end(),
    );
    rawPod.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      seen.push(req);
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n",
      );
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
    await new Promise<void>((r) => rawPod?.listen(5700, podIp, r));
    const res = await fetch(`${base}/api/v1/${KEY}/instances/raw?wait=30`);
    expect(res.status).toBe(200);
    const raw = (await res.json()) as { name: string; connection: { host: string } };
    expect(raw.connection.host).toBe(podIp);
    const link = new URL((await previewLink("raw", 6080)).url);
    const signedIn = await previewRequest(base, link.host, link.pathname + link.search);
    const cookie = cookiePair(signedIn.headers["set-cookie"]);
    const { head, socket } = await rawUpgrade(
      base,
      "/websockify",
      `Cookie: ${cookie}\r\n`,
      link.host,
    );
    expect(head).toMatch(/^HTTP\/1.1 101/);
    expect(seen.at(-1)?.url).toBe("/preview/6080/websockify");
    const echoed = new Promise<string>((r) => socket.once("data", (d) => r(String(d))));
    socket.write("frames both ways");
    expect(await echoed).toBe("frames both ways");
    socket.destroy();
    const refused = await rawUpgrade(base, "/websockify", "", link.host);
    expect(refused.head).toMatch(/^HTTP\/1.1 401/);
    refused.socket.destroy();
  });
});
