/// <reference lib="dom" />
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CoreV1Api, loadYaml, type V1PodTemplate } from "@kubernetes/client-node";
import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type ModelEndpoint, startModelEndpoint } from "../../scripts/lib/model-endpoint.js";
import { serveWebUi, type WebUi, webUiDistOf } from "../../scripts/lib/webui.js";
import { chromiumFor, launchChromium } from "../support/browser.js";
import { adminKubeConfig, createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, startInstanceWithServer } from "../support/gptme.js";
import { freePort } from "../support/process.js";

const ROOT = resolve(import.meta.dirname, "../..");
const KEY = "model-plan-client-01";
/** The provider key the plan's Secret holds: it must reach the model and nothing of the fleet. */
const PROVIDER_KEY = "sk-plan-provider-key-7c4f0e2a9b";
const SCREENSHOT = resolve(ROOT, ".ci/out/model-webui.png");
const CHROMIUM_HERE = chromiumFor("the web UI check");

/** The shipped template of a plan with a model (k8s/local/models/), as an operator applies it. */
function modelTemplate(): V1PodTemplate {
  const text = readFileSync(
    resolve(ROOT, "k8s/local/models/podtemplate-gptme-client-model.yaml"),
    "utf8",
  );
  const template = loadYaml<V1PodTemplate>(text);
  return { ...template, metadata: { name: template.metadata?.name } };
}

// A model out of the box: a plan's template gives gptme-server a default model and the
// provider's key from a Secret, and gptme's unmodified web UI, signed in by code, opens on a
// chat with that model and gets its reply. The provider is an OpenAI-compatible stand-in on
// this machine that checks the key it was given.
describe("a plan's model, from its template and a Secret", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let endpoint: ModelEndpoint;
  let ui: WebUi;
  let gptme: GptmeServer | undefined;
  let browser: Browser | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;

  beforeAll(async () => {
    namespace = await createTestNamespace("model");
    endpoint = await startModelEndpoint({ keys: [PROVIDER_KEY], models: ["fleet-model"] });
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await installTemplate(namespace, modelTemplate());
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "fleet-model-credentials" }, stringData: { apiKey: PROVIDER_KEY } },
    });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "fleet-model" }, data: { baseUrl: endpoint.baseUrl } },
    });
    // The handler's own port is the public URL here (what Traefik is in production).
    const port = await freePort();
    const fleet = `http://127.0.0.1:${port}`;
    ui = await serveWebUi(webUiDistOf(inject("gptmeServer")), { fleetBaseUrl: fleet });
    handler = startHandler(namespace, {
      POD_TEMPLATE: "gptme-client-model",
      PUBLIC_URL: fleet,
      CORS_ORIGINS: ui.url,
      WEBUI_URL: `${ui.url}/`,
    });
    http = await listenHandler(handler, port);
    const started = await startInstanceWithServer(namespace, (wait) =>
      fetch(`${http.url}/instances/chat/login?wait=${wait}`, {
        method: "POST",
        headers: { "x-api-key": KEY },
      }),
    );
    gptme = started.server;
    instance = started.instance;
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await gptme?.stop();
    await http?.close();
    handler?.close();
    await ui?.close();
    await endpoint?.close();
    await deleteTestNamespace(namespace);
  });

  it("answers provider_configured: true through the gateway, and the model answers with the plan's key", async () => {
    const gateway = `${http.url}${instance.endpoint.path}`;
    const root = await fetch(`${gateway}/api/v2`, {
      headers: { authorization: `Bearer ${instance.endpoint.token}` },
    });
    expect(root.status).toBe(200);
    expect(await root.json()).toMatchObject({ provider_configured: true });
    // The stand-in checks keys as a provider does: none, or another, is refused.
    expect((await fetch(`${endpoint.baseUrl}/models`)).status).toBe(401);
    const wrong = await fetch(`${endpoint.baseUrl}/models`, {
      headers: { authorization: "Bearer sk-somebody-else" },
    });
    expect(wrong.status).toBe(401);
  });

  it.skipIf(!CHROMIUM_HERE)(
    "opens gptme's web UI, signed in by code, on a chat with the plan's model, which replies",
    { timeout: 120_000 },
    async () => {
      browser = await launchChromium();
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 800 });
      await page.goto(instance.login.url);
      const skip = await page
        .waitForSelector("::-p-text(Skip for now)", { timeout: 15_000 })
        .catch(() => null);
      await skip?.click();
      // No provider setup: the model selector already names the plan's model.
      await page.waitForFunction(
        () =>
          document
            .querySelector('[data-testid="model-selector"]')
            ?.textContent?.includes("fleet-model"),
        { timeout: 20_000 },
      );
      expect(await page.evaluate(() => document.body.textContent ?? "")).not.toContain(
        "Provider setup required",
      );
      await page.type('[data-testid="chat-input"]', "hello from the web UI");
      await page.keyboard.press("Enter");
      await page.waitForFunction(
        () =>
          (document.body.textContent ?? "").includes(
            "Hello from fleet-model. You said: hello from the web UI",
          ),
        { timeout: 60_000 },
      );
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      await page.close();
      const answered = endpoint.completions.filter(
        (c) => c.lastUserMessage === "hello from the web UI",
      );
      expect(answered).toEqual([
        expect.objectContaining({ keyIndex: 0, model: "fleet-model", stream: true }),
      ]);
    },
  );

  it("keeps the provider key out of the template, the ClientPod, the Pod spec, logs and metrics", async () => {
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const pod = await core.readNamespacedPod({ name: instance.name, namespace });
    const clientPod = await handler.kube.clientPods.get(instance.name);
    const template = await core.readNamespacedPodTemplate({
      name: "gptme-client-model",
      namespace,
    });
    const everything = [
      JSON.stringify(pod),
      JSON.stringify(clientPod),
      JSON.stringify(template),
      handler.logs.lines.join("\n"),
      await handler.metrics.registry.metrics(),
      JSON.stringify(instance),
    ].join("\n");
    expect(everything).not.toContain(PROVIDER_KEY);
    // The Pod reads it from the Secret, as the template says.
    const env = pod.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === "GPTME_CLOUD_API_KEY")?.valueFrom?.secretKeyRef).toEqual({
      name: "fleet-model-credentials",
      key: "apiKey",
    });
    expect(endpoint.refused).toBe(2);
  });
});
