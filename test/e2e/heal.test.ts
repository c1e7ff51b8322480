import { afterAll, describe, expect, it } from "vitest";
import {
  core,
  deleteInstance,
  eventually,
  getInstance,
  NAMESPACE,
  podNameOf,
  readPod,
} from "./support/fleet.js";
import { gateway } from "./support/workspace.js";

const KEY = "e2e-heal-key-000001";

// A node drain evicts an instance's Pod; its client, who talks only through the gateway,
// gets it back with the next request (held until the new gptme-server answers), over the
// same workspace and with the same token. With the warm pool on (as deployed), the instance
// is usually a claimed member, whose Pod comes back under the member's name.
describe("an evicted instance healed by the next gateway request, on the real node", () => {
  let name = "";

  afterAll(async () => {
    if (name) await deleteInstance(name);
  });

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
    const podName = podNameOf(body);
    const before = (await readPod(podName))?.metadata?.uid;

    // What `kubectl drain` does to each pod: the Eviction API.
    await core().createNamespacedPodEviction({
      name: podName,
      namespace: NAMESPACE,
      body: { metadata: { name: podName, namespace: NAMESPACE } },
    });
    await eventually(
      async () => ((await readPod(podName))?.metadata?.uid === before ? undefined : true),
      "the evicted Pod to be gone",
      90_000,
    );

    const started = Date.now();
    const res = await gateway(endpoint, "/api/v2/conversations");
    const heldMs = Date.now() - started;
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain("before-eviction");
    const after = await readPod(podName);
    expect(after?.metadata?.uid).not.toBe(before);
    const kind = podName === name ? "its own Pod" : "a claimed pool member's Pod";
    console.error(
      `[e2e] heal: the gateway request after an eviction (${kind}) answered in ${heldMs} ms`,
    );
  });
});
