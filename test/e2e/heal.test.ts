import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  core,
  deleteInstance,
  eventually,
  getInstance,
  NAMESPACE,
  poolOff,
  readPod,
} from "./support/fleet.js";
import { gateway } from "./support/workspace.js";

const KEY = "e2e-heal-key-000001";

// A node drain evicts an instance's Pod; its client, who talks only through the gateway,
// gets it back with the next request (held until the new gptme-server answers), over the
// same workspace and with the same token.
describe("an evicted instance healed by the next gateway request, on the real node", () => {
  let name = "";
  let pool: { restore: () => void } | undefined;

  beforeAll(() => {
    pool = poolOff();
  }, 400_000);

  afterAll(async () => {
    if (name) await deleteInstance(name);
    pool?.restore();
  }, 400_000);

  it("answers the next gateway request from a new Pod with the conversation made before", async () => {
    const { status, body } = await getInstance(KEY, "heal", 60);
    expect(status, JSON.stringify(body)).toBe(200);
    name = body.name;
    const endpoint = body.endpoint as { path: string; token: string };
    const made = await gateway(endpoint, "/api/v2/conversations/before-eviction", {
      method: "PUT",
      body: { messages: [{ role: "user", content: "still here?" }] },
    });
    expect(made.status).toBe(200);
    const before = (await readPod(name))?.metadata?.uid;

    // What `kubectl drain` does to each pod: the Eviction API.
    await core().createNamespacedPodEviction({
      name,
      namespace: NAMESPACE,
      body: { metadata: { name, namespace: NAMESPACE } },
    });
    await eventually(
      async () => ((await readPod(name))?.metadata?.uid === before ? undefined : true),
      "the evicted Pod to be gone",
      90_000,
    );

    const started = Date.now();
    const res = await gateway(endpoint, "/api/v2/conversations");
    const heldMs = Date.now() - started;
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain("before-eviction");
    const after = await readPod(name);
    expect(after?.metadata?.uid).not.toBe(before);
    console.error(`[e2e] heal: the gateway request after an eviction answered in ${heldMs} ms`);
  });
});
