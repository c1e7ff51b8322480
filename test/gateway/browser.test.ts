/// <reference lib="dom" />
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { serveWebUi, type WebUi, webUiDistOf } from "../../scripts/lib/webui.js";
import { chatWithEcho, chromiumFor, launchChromium } from "../support/browser.js";
import { createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";

const KEY = "browser-key-00000001";
const SCREENSHOT = resolve(import.meta.dirname, "../../.ci/out/gateway-webui.png");
const CHROMIUM_HERE = chromiumFor("the web UI through the gateway");

// The real client, in a real browser: gptme's web UI talks to its instance through the
// gateway, from another origin, with the endpoint and token the fleet handed out.
describe.skipIf(!CHROMIUM_HERE)("gptme's web UI through the gateway, in Chromium", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let ui: WebUi;
  let gptme: GptmeServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    ui = await serveWebUi(webUiDistOf(inject("gptmeServer")));
    namespace = await createTestNamespace("browser");
    await installTemplate(namespace);
    // The handler's own port is the public URL here (what Traefik is in production).
    handler = startHandler(namespace, { CORS_ORIGINS: ui.url });
    http = await listenHandler(handler);
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gptme?.stop();
    await http?.close();
    handler?.close();
    await ui?.close();
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
    // First visit: a welcome dialog; then a message, echoed back over the event stream.
    await chatWithEcho(page, "hello from chromium", 20_000);
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
