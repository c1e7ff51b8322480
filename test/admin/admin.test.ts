import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { adminKubeConfig, createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const TOKEN = "admin-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const keys = ["admin-key-00000001", "admin-key-00000002", "admin-key-00000003"];

describe("admin API", () => {
  let namespace: string;
  let handler: TestHandler;

  beforeAll(async () => {
    namespace = await createTestNamespace("admin");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace, { ADMIN_TOKEN: TOKEN });
    // 3 clients x 3 instances = 9 instances; the first client's are ready, the rest starting.
    for (const [k, key] of keys.entries()) {
      for (const instance of ["a", "b", "c"]) {
        const wait = k === 0 ? 30 : 0;
        expect(
          (await handler.request(`/instances/${instance}?wait=${wait}`, { apiKey: key })).status,
        ).toBeLessThan(300);
      }
    }
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  describe("authentication", () => {
    it("answers 403 admin_disabled on every admin route when no token is configured", async () => {
      const open = startHandler(namespace);
      try {
        for (const [path, method] of [
          ["/admin/pods", "GET"],
          ["/admin/pods/gptme-client-0000000000000000", "GET"],
          ["/admin/pods/gptme-client-0000000000000000", "DELETE"],
        ] as const) {
          const res = await open.request(path, { method, headers: auth });
          expect(res.status).toBe(403);
          expect((await res.json()).code).toBe("admin_disabled");
        }
      } finally {
        open.close();
      }
    });

    it.each([
      ["missing", {}],
      ["wrong", { authorization: "Bearer not-the-token-0123456789" }],
      ["a prefix of it", { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ["not a bearer", { authorization: `Basic ${TOKEN}` }],
      ["empty", { authorization: "Bearer " }],
    ])("answers 401 unauthorized when the token is %s", async (_what, headers) => {
      handler.counter.reset();
      const res = await handler.request("/admin/pods", { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ statusCode: 401, code: "unauthorized" });
      expect(handler.counter.calls).toEqual([]);
    });

    it("accepts the right token", async () => {
      expect((await handler.request("/admin/pods", { headers: auth })).status).toBe(200);
    });
  });

  it("lists every instance with its clientId and podPhase", async () => {
    const body = await (await handler.request("/admin/pods", { headers: auth })).json();
    expect(body.items).toHaveLength(9);
    expect(body.continue).toBe("");
    const item = body.items.find(
      (i: { name: string }) => i.name === instanceNameOf(clientIdOf(keys[0] ?? ""), "a"),
    );
    expect(item).toMatchObject({
      instanceId: "a",
      clientId: clientIdOf(keys[0] ?? ""),
      status: "ready",
      podPhase: "Running",
      connection: { port: 5700 },
    });
  });

  it("filters by client and by status", async () => {
    const client = clientIdOf(keys[1] ?? "");
    const mine = await (
      await handler.request(`/admin/pods?client=${client}`, { headers: auth })
    ).json();
    expect(mine.items.map((i: { clientId: string }) => i.clientId)).toEqual([
      client,
      client,
      client,
    ]);
    const ready = await (
      await handler.request("/admin/pods?status=ready", { headers: auth })
    ).json();
    expect(ready.items.every((i: { status: string }) => i.status === "ready")).toBe(true);
    expect(ready.items.length).toBeGreaterThanOrEqual(3);
  });

  it("pages through the API server: a page of ClientPods, each one's Pod by name, the template's revision", async () => {
    const seen = new Set<string>();
    let token = "";
    let pages = 0;
    do {
      handler.counter.reset();
      const query: string = token ? `&continue=${encodeURIComponent(token)}` : "";
      const page = await (
        await handler.request(`/admin/pods?limit=4${query}`, { headers: auth })
      ).json();
      expect(page.items.length).toBeLessThanOrEqual(4);
      expect(handler.counter.calls).toEqual([
        "list clientpods",
        ...page.items.map(() => "get pods"),
        "get podtemplates",
      ]);
      for (const item of page.items) seen.add(item.name);
      token = page.continue;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(seen.size).toBe(9);
  });

  it("rejects bad query values with 400 invalid_query", async () => {
    for (const query of [
      "limit=0",
      "limit=501",
      "limit=x",
      "status=sleeping",
      "client=NOT-HEX",
      "continue=garbage",
    ]) {
      const res = await handler.request(`/admin/pods?${query}`, { headers: auth });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe("invalid_query");
    }
  });

  it("says when an instance expires for its lifetime rather than for idleness", async () => {
    const name = instanceNameOf(clientIdOf(keys[2] ?? ""), "b");
    await adminKubeConfig()
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObject(
        {
          group: "gptme.ai",
          version: "v1",
          namespace,
          plural: "clientpods",
          name,
          body: { spec: { maxLifetimeSeconds: 600 } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    const body = await (await handler.request(`/admin/pods/${name}`, { headers: auth })).json();
    expect(body.expiryReason).toBe("max-lifetime");
    expect(Date.parse(body.expiresAt) - Date.parse(body.createdAt)).toBe(600_000);
  });

  it("gets one, deletes it, then answers 404", async () => {
    const name = instanceNameOf(clientIdOf(keys[2] ?? ""), "c");
    const one = await handler.request(`/admin/pods/${name}`, { headers: auth });
    expect(one.status).toBe(200);
    const body = await one.json();
    expect(body).toMatchObject({ name, expiryReason: "idle", lastReap: null });
    expect(Date.parse(body.expiresAt) - Date.parse(body.lastActivity)).toBe(30 * 60_000);
    const del = await handler.request(`/admin/pods/${name}`, { method: "DELETE", headers: auth });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ name, deleted: true, workspace: "kept" });
    for (const method of ["GET", "DELETE"]) {
      const gone = await handler.request(`/admin/pods/${name}`, { method, headers: auth });
      expect(gone.status).toBe(404);
      expect((await gone.json()).code).toBe("not_found");
    }
    // Its Pod goes at once, not whenever the garbage collector gets to it.
    const pod = await handler.kube.pods.get(name);
    expect(pod === undefined || pod.metadata?.deletionTimestamp !== undefined).toBe(true);
  });
});
