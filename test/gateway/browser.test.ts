/// <reference lib="dom" />
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, resolve } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";

const CHROMIUM = "/usr/bin/chromium";
const KEY = "browser-key-00000001";
const SCREENSHOT = resolve(import.meta.dirname, "../../.ci/out/gateway-webui.png");
const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};

/** gptme's own web UI (the built files in its wheel), served from another loopback origin. */
async function serveWebUi(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    let file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || path.endsWith("/"))
      file = join(root, "index.html");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

// The real client, in a real browser: gptme's web UI talks to its instance through the
// gateway, from another origin, with the endpoint and token the fleet handed out.
describe.skipIf(!existsSync(CHROMIUM))("gptme's web UI through the gateway, in Chromium", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let ui: { server: Server; url: string };
  let gptme: GptmeServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const webui = join(dirname(dirname(inject("gptmeServer"))), "lib");
    const dist = [
      ...["python3.11", "python3.12", "python3.13"].map((p) =>
        join(webui, p, "site-packages/gptme/server/webui-dist"),
      ),
    ].find((d) => existsSync(d));
    if (!dist) throw new Error("gptme's webui-dist is not in its venv");
    ui = await serveWebUi(dist);
    namespace = await createTestNamespace("browser");
    await installTemplate(namespace);
    // The handler's own port is the public URL here (what Traefik is in production).
    handler = startHandler(namespace, { CORS_ORIGINS: ui.url });
    http = await listenHandler(handler);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gptme?.stop();
    await http?.close();
    handler?.close();
    await new Promise((r) => ui?.server.close(r));
    await deleteTestNamespace(namespace);
  });

  it("connects, lists conversations and shows a mock/echo reply from the event stream", async () => {
    const instance = await (await handler.request("/instances/web?wait=0", { apiKey: KEY })).json();
    // An offline model, so the chat needs no LLM key.
    gptme = await runInstancePod(namespace, instance.name, ["--model", "mock/echo"]);
    const baseUrl = `${http.url}${instance.endpoint.path}`;
    const auth = {
      authorization: `Bearer ${instance.endpoint.token}`,
      "content-type": "application/json",
    };
    // A conversation made beforehand: the UI must list it through the gateway.
    await fetch(`${baseUrl}/api/v2/conversations/made-by-api`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ messages: [{ role: "user", content: "listed through the gateway" }] }),
    });

    const page = await (browser as Browser).newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const failures: string[] = [];
    const gatewayAnswers: { url: string; status: number; origin: string | undefined }[] = [];
    page.on("requestfailed", (r) => failures.push(`${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => {
      if (r.url().startsWith(baseUrl)) {
        gatewayAnswers.push({
          url: r.url(),
          status: r.status(),
          origin: r.headers()["access-control-allow-origin"],
        });
      }
    });
    await page.goto(
      `${ui.url}/#baseUrl=${encodeURIComponent(baseUrl)}&userToken=${instance.endpoint.token}`,
    );
    await page.waitForFunction(() => (document.body.textContent ?? "").includes("made-by-api"), {
      timeout: 20_000,
    });
    // First visit: a welcome dialog.
    await (await page.waitForSelector("::-p-text(Skip for now)", { timeout: 10_000 }))?.click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="model-selector"]')?.textContent?.includes("echo"),
      { timeout: 10_000 },
    );
    await page.type('[data-testid="chat-input"]', "hello from chromium");
    await page.keyboard.press("Enter");
    await page.waitForFunction(
      () => (document.body.textContent ?? "").includes("Echo: hello from chromium"),
      { timeout: 20_000 },
    );
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    // Every call went through the gateway, allowed for the UI's exact origin; the reply came
    // over the event stream, opened the only way EventSource can: with the token in the query.
    expect(failures).toEqual([]);
    expect(gatewayAnswers.length).toBeGreaterThan(5);
    for (const answer of gatewayAnswers) {
      expect(answer.status, answer.url).toBeLessThan(400);
      expect(answer.origin, answer.url).toBe(ui.url);
    }
    expect(gatewayAnswers.some((a) => /\/events\?.*token=/.test(a.url) && a.status === 200)).toBe(
      true,
    );
    await page.close();
  });
});
