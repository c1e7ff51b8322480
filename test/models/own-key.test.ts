import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CoreV1Api, loadYaml, type V1PodTemplate } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ModelEndpoint, startModelEndpoint } from "../../scripts/lib/model-endpoint.js";
import type { Kube } from "../../shared/kube/client.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  bareTemplate,
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";
import { reapOnce } from "../support/reaper.js";

const ROOT = resolve(import.meta.dirname, "../..");
const KEY = "own-key-client-000001";
/** A person's own provider key, saved through gptme's own setup: the fleet must never hold it. */
const PERSON_KEY = "sk-person-own-key-5e1d7a0c3f";
const MODEL = "gpt-4o-mini";

/** The shipped PodTemplate (its workspace is gptme-server's HOME), as an operator applies it. */
function shippedTemplate(): V1PodTemplate {
  const path = resolve(ROOT, "k8s/local/fleet-operator/05-podtemplate-gptme-client.yaml");
  const template = loadYaml<V1PodTemplate>(readFileSync(path, "utf8"));
  return { ...template, metadata: { name: template.metadata?.name } };
}

// A person's own key survives: saved with gptme's own route (through the gateway) it lives in
// their workspace, so after the reaper deletes the instance and they come back, gptme-server
// starts with it (provider_configured) and the model answers; a purge removes it; the fleet
// never holds it. The provider is an OpenAI-compatible stand-in on this machine that checks
// the key (gptme's `openai` provider is pointed at it with OPENAI_BASE_URL: no network).
describe.each([
  ["the shipped template (workspace mounted as HOME)", shippedTemplate],
  ["a template without a workspace volume (mounted at /workspace)", () => bareTemplate()],
])("a person's own provider key lives in their workspace: %s", (_, template) => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let kube: Kube;
  let endpoint: ModelEndpoint;
  const servers: GptmeServer[] = [];
  /** Every answer the fleet gave, to check none of them holds the key. */
  const answers: string[] = [];
  /** The instance's name (its workspace claim's too). */
  let name = "";

  const get = async (wait: number) => {
    const response = await handler.request(`/instances/mine?wait=${wait}`, { apiKey: KEY });
    const text = await response.text();
    answers.push(text);
    return { status: response.status, body: JSON.parse(text) };
  };
  /** The instance's gptme-server started as its container would, then its ready answer. */
  const start = async () => {
    const { body } = await get(0);
    servers.push(
      await runInstancePod(namespace, body.name, [], { OPENAI_BASE_URL: endpoint.baseUrl }),
    );
    const ready = await get(30);
    expect(ready.status).toBe(200);
    return ready.body;
  };
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  const gptme = async (instance: any, path: string, body?: object) => {
    const response = await fetch(`${http.url}${instance.endpoint.path}/api/v2${path}`, {
      method: body ? "POST" : "GET",
      headers: {
        authorization: `Bearer ${instance.endpoint.token}`,
        "content-type": "application/json",
      },
      body: body && JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  const chat = async (instance: any, id: string, text: string, model?: string) => {
    const put = await fetch(`${http.url}${instance.endpoint.path}/api/v2/conversations/${id}`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${instance.endpoint.token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ messages: [{ role: "user", content: text }] }),
    });
    const { session_id } = await put.json();
    const step = await gptme(instance, `/conversations/${id}/step`, { session_id, model });
    expect(step.status).toBe(200);
    return eventually(
      async () => endpoint.completions.find((c) => c.lastUserMessage === text),
      `the model's answer to "${text}"`,
    );
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("own-key");
    endpoint = await startModelEndpoint({ keys: [PERSON_KEY], models: [MODEL] });
    await installTemplate(namespace, template());
    handler = startHandler(namespace);
    http = await listenHandler(handler);
    kube = adminKube(namespace);
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  afterAll(async () => {
    await http?.close();
    handler?.close();
    kube?.close();
    await endpoint?.close();
    await deleteTestNamespace(namespace);
  });

  it("survives the reaper: the returning person's instance is configured and the model answers", {
    timeout: 180_000,
  }, async () => {
    const first = await start();
    name = first.name;
    expect((await gptme(first, "")).body.provider_configured).toBe(false);
    // gptme's own setup, as its web UI's wizard calls it, through the gateway. Validation asks
    // the provider (the network); gptme offers skip_validation for offline use.
    const saved = await gptme(first, "/user/api-key", {
      provider: "openai",
      api_key: PERSON_KEY,
      skip_validation: true,
    });
    expect(saved).toMatchObject({ status: 200, body: { status: "ok", env_var: "OPENAI_API_KEY" } });
    const model = await gptme(first, "/user/default-model", { model: `openai/${MODEL}` });
    expect(model).toMatchObject({ status: 200, body: { restart_required: false } });
    // (The running server applies them to the request that saved them; whether it reports
    // provider_configured before a restart is gptme's business. A step naming the model runs.)
    expect(await chat(first, "before", "before lunch", `openai/${MODEL}`)).toMatchObject({
      keyIndex: 0,
      model: MODEL,
    });

    // Idle past the timeout: the reaper deletes the instance and keeps its workspace.
    await kube.clientPods.patchStatus(first.name, {
      lastActivity: new Date(Date.now() - 2 * 3600_000).toISOString(),
    });
    await servers.splice(0).pop()?.stop();
    const reaped = await reapOnce(kube);
    expect(reaped.summary).toMatchObject({ deleted: 1, failed: 0 });
    answers.push(JSON.stringify(reaped.lines));
    await eventually(
      async () => ((await kube.pods.get(first.name)) ? undefined : true),
      "the reaped Pod to go",
    );

    // Back: a new instance (new Pod, new token) over the kept workspace, configured from it.
    const second = await start();
    expect(second).toMatchObject({ name: first.name, workspace: { state: "kept" } });
    expect(second.endpoint.token).not.toBe(first.endpoint.token);
    // Started from the workspace's config: configured, and the saved model is the default.
    expect((await gptme(second, "")).body.provider_configured).toBe(true);
    expect(await chat(second, "after", "after lunch")).toMatchObject({ keyIndex: 0, model: MODEL });
    expect(endpoint.refused).toBe(0);
  });

  it("is gone after a purge: the next instance starts unconfigured", {
    timeout: 120_000,
  }, async () => {
    const purged = await handler.request("/instances/mine?purge=true", {
      apiKey: KEY,
      method: "DELETE",
    });
    answers.push(await purged.clone().text());
    expect(await purged.json()).toMatchObject({ deleted: true, workspace: "purged" });
    await eventually(
      async () =>
        (await kube.workspaces.get(name)) === undefined && (await kube.pods.get(name)) === undefined
          ? true
          : undefined,
      "the purged instance's Pod and claim to go",
    );
    const fresh = await start();
    expect(fresh.workspace.state).toBe("new");
    expect((await gptme(fresh, "")).body.provider_configured).toBe(false);
  });

  it("never holds the key: no fleet object, log line, metric or answer carries it", async () => {
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const objects = await Promise.all([
      core.listNamespacedPod({ namespace }),
      core.listNamespacedPersistentVolumeClaim({ namespace }),
      core.listNamespacedSecret({ namespace }),
      core.listNamespacedConfigMap({ namespace }),
      kube.clientPods.list({}),
    ]);
    const everything = [
      JSON.stringify(objects),
      handler.logs.lines.join("\n"),
      await handler.metrics.registry.metrics(),
      ...answers,
    ].join("\n");
    expect(everything).not.toContain(PERSON_KEY);
    expect(handler.logs.lines.length).toBeGreaterThan(0);
  });
});
