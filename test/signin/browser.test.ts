/// <reference lib="dom" />
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { serveWebUi, type WebUi, webUiDistOf } from "../../scripts/lib/webui.js";
import { chatWithEcho, chromiumFor, launchChromium } from "../support/browser.js";
import { createTestNamespace, deleteTestNamespace, eventually } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, startInstanceWithServer } from "../support/gptme.js";
import { freePort } from "../support/process.js";
import { startTraefik, type TestTraefik } from "../support/traefik.js";

const KEY = "signin-browser-key-01";
const SCREENSHOT = resolve(import.meta.dirname, "../../.ci/out/signin-webui.png");
const CHROMIUM_HERE = chromiumFor("the web UI's sign-in");

// The real client, in a real browser, signing in as gptme's clients do: gptme's unmodified
// web UI, on its own origin, opened with a one-time code minted through the real Traefik,
// exchanges it at the fleet, then talks to its instance through the gateway.
describe.skipIf(!CHROMIUM_HERE)("gptme's web UI signs in with a one-time code", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let traefik: TestTraefik;
  let ui: WebUi;
  let gptme: GptmeServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    namespace = await createTestNamespace("signin-ui");
    await installTemplate(namespace);
    const traefikPort = await freePort();
    const fleet = `http://127.0.0.1:${traefikPort}`;
    ui = await serveWebUi(webUiDistOf(inject("gptmeServer")), { fleetBaseUrl: fleet });
    handler = startHandler(namespace, {
      PUBLIC_URL: fleet,
      WEBUI_URL: `${ui.url}/`,
      CORS_ORIGINS: ui.url,
    });
    http = await listenHandler(handler);
    traefik = await startTraefik(
      namespace,
      traefikPort,
      Number(new URL(http.url).port),
      `/api/v1/${KEY}/instances/probe?wait=0`,
    );
    browser = await launchChromium();
  }, 15 * 60_000);

  afterAll(async () => {
    await browser?.close();
    await gptme?.stop();
    traefik?.stop();
    await http?.close();
    handler?.close();
    await ui?.close();
    await deleteTestNamespace(namespace);
  });

  it("exchanges the code, lists a conversation, and shows a mock/echo reply over an sseToken stream", {
    timeout: 180_000,
  }, async () => {
    // The instance starts, its server runs at the pod IP, then the login answers 200 (ready).
    const started = await startInstanceWithServer(
      namespace,
      (wait) =>
        fetch(`${traefik.url}/api/v1/${KEY}/instances/web/login?wait=${wait}`, { method: "POST" }),
      ["--model", "mock/echo"],
    );
    gptme = started.server;
    const instance = started.instance;
    expect(instance.login.url).toBe(`${ui.url}/#code=${instance.login.code}`);
    const userToken: string = instance.endpoint.token;
    const gateway = `${traefik.url}${instance.endpoint.path}`;
    await fetch(`${gateway}/api/v2/conversations/made-by-api`, {
      method: "PUT",
      headers: { authorization: `Bearer ${userToken}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "listed after sign-in" }] }),
    });

    const page = await (browser as Browser).newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const failures: string[] = [];
    const streams: string[] = [];
    let exchanged = 0;
    page.on("requestfailed", (r) => failures.push(`${r.url()} ${r.failure()?.errorText}`));
    page.on("request", (r) => {
      if (/\/events\?/.test(r.url())) streams.push(r.url());
    });
    page.on("response", (r) => {
      if (r.url() === `${traefik.url}/api/v1/operator/auth/exchange` && r.status() === 200)
        exchanged++;
    });
    await page.goto(instance.login.url);
    await page.waitForFunction(() => (document.body.textContent ?? "").includes("made-by-api"), {
      timeout: 30_000,
    });
    // The code left the address bar.
    expect(page.url()).not.toContain(instance.login.code);
    await chatWithEcho(page, "hello after sign-in", 30_000);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    await page.close();

    expect(failures.filter((f) => !f.includes("/events?"))).toEqual([]);
    expect(exchanged).toBe(1);
    // The browser opened its event streams with the sseToken, never the user token ...
    expect(streams.length).toBeGreaterThan(0);
    for (const url of streams) {
      expect(url).toMatch(/[?&]token=sse1\./);
      expect(url).not.toContain(userToken);
    }
    // ... and the gateway admitted them as such.
    const admittedStream = () =>
      handler.logs.lines
        .map((l) => JSON.parse(l))
        .some(
          (l) =>
            l.route === "/api/v1/instances/:name/**" &&
            l.credential === "sse-token" &&
            l.status === 200,
        );
    // A stream's line is written when it closes (the page is closed above).
    await eventually(async () => (admittedStream() ? true : undefined), "the stream's log line");
    const metrics = await handler.metrics.registry.metrics();
    expect(metrics).toMatch(/fleet_gateway_credentials_total\{kind="sse-token"\} [1-9]/);
  });
});
