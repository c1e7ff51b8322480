import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../shared/instance/names.js";
import {
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  unreachableKubeConfig,
} from "../support/cluster.js";
import {
  installTemplate,
  startHandler,
  type TestHandler,
  type TestResponse,
} from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

const KEY = "errors-key-00000001";

async function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = await res.json();
  expect(body).toEqual({ statusCode: status, code, message: expect.any(String) });
  expect(body.message.length).toBeGreaterThan(10);
  return body;
}

describe("client API errors (contract section 3)", () => {
  let namespace: string;
  let handler: TestHandler;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const countClientPods = async () => (await clientPodNames(namespace)).length;

  beforeAll(async () => {
    namespace = await createTestNamespace("errors");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace);
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  describe("malformed input is a 400 and creates nothing", () => {
    it.each([
      ["/instances/Has-Upper", "invalid_instance_id"],
      ["/instances/-leading", "invalid_instance_id"],
      ["/instances/trailing-", "invalid_instance_id"],
      [`/instances/${"a".repeat(41)}`, "invalid_instance_id"],
      ["/instances/under_score", "invalid_instance_id"],
      ["/instances/ok?wait=61", "invalid_wait"],
      ["/instances/ok?wait=-1", "invalid_wait"],
      ["/instances/ok?wait=soon", "invalid_wait"],
      ["/instances/ok?wait=", "invalid_wait"],
    ])("GET %s -> %s", async (path, code) => {
      handler.counter.reset();
      await expectError(await handler.request(path, { apiKey: KEY }), 400, code);
      expect(handler.counter.calls).toEqual([]);
    });

    it.each([["short"], ["x".repeat(257)], ["has space in it"], ["semi;colon;key"]])(
      "X-API-Key %j -> invalid_api_key",
      async (apiKey) => {
        handler.counter.reset();
        await expectError(
          await handler.request("/instances/ok", { apiKey }),
          400,
          "invalid_api_key",
        );
        expect(handler.counter.calls).toEqual([]);
      },
    );

    it("a malformed key in the path is invalid_api_key", async () => {
      await expectError(
        await handler.request("/api/v1/bad%ZZkey1234/instances/ok"),
        400,
        "bad_request",
      );
      await expectError(
        await handler.request("/api/v1/short/instances/ok"),
        400,
        "invalid_api_key",
      );
    });

    it("nothing was created by any of them", async () => {
      expect(await countClientPods()).toBe(0);
      expect((await core.listNamespacedPod({ namespace })).items).toHaveLength(0);
    });
  });

  it("401 missing_api_key without a key", async () => {
    await expectError(await handler.request("/instances/ok"), 401, "missing_api_key");
    await expectError(await handler.request("/instances"), 401, "missing_api_key");
    await expectError(
      await handler.request("/instances/ok", { method: "DELETE" }),
      401,
      "missing_api_key",
    );
  });

  it("403 unknown_api_key when API_KEYS_FILE does not list the key (plain or sha256)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleet-keys-"));
    const file = join(dir, "keys");
    writeFileSync(
      file,
      `# allowed clients\nplain-key-123456\nsha256:${sha256Hex("hashed-key-123456")}\n`,
    );
    const restricted = startHandler(namespace, { API_KEYS_FILE: file });
    try {
      await expectError(
        await restricted.request("/instances/ok", { apiKey: KEY }),
        403,
        "unknown_api_key",
      );
      expect((await restricted.request("/instances", { apiKey: "plain-key-123456" })).status).toBe(
        200,
      );
      expect((await restricted.request("/instances", { apiKey: "hashed-key-123456" })).status).toBe(
        200,
      );
    } finally {
      restricted.close();
    }
  });

  it("404 not_found when deleting an instance that does not exist", async () => {
    await expectError(
      await handler.request("/instances/never-made", { apiKey: KEY, method: "DELETE" }),
      404,
      "not_found",
    );
  });

  it("404 for unknown routes, without echoing the path (it may hold a key)", async () => {
    const body = await expectError(
      await handler.request(`/api/v1/${KEY}/nowhere`),
      404,
      "not_found",
    );
    expect(JSON.stringify(body)).not.toContain(KEY);
  });

  it("500 template_not_found when the PodTemplate is missing, creating nothing", async () => {
    const broken = startHandler(namespace, { POD_TEMPLATE: "no-such-template" });
    try {
      await expectError(
        await broken.request("/instances/ok", { apiKey: KEY }),
        500,
        "template_not_found",
      );
      expect(await countClientPods()).toBe(0);
    } finally {
      broken.close();
    }
  });

  it("429 instance_limit at MAX_INSTANCES_PER_CLIENT, exact under concurrency", async () => {
    const limited = startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: "3" });
    const key = "limit-key-00000001";
    try {
      // Ten different instances at once: exactly three may exist afterwards.
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          limited.request(`/instances/i${i}?wait=0`, { apiKey: key }),
        ),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 202 || s === 200).length).toBeLessThanOrEqual(3);
      expect(statuses.every((s) => s === 202 || s === 200 || s === 429)).toBe(true);
      const listed = await (await limited.request("/instances", { apiKey: key })).json();
      expect(listed.items.length).toBeLessThanOrEqual(3);
      // Sequentially, the limit is exact: fill up to three, then the fourth is refused.
      for (let i = listed.items.length; i < 3; i++) {
        expect((await limited.request(`/instances/fill${i}?wait=0`, { apiKey: key })).status).toBe(
          202,
        );
      }
      await expectError(
        await limited.request("/instances/one-more?wait=0", { apiKey: key }),
        429,
        "instance_limit",
      );
      const after = await (await limited.request("/instances", { apiKey: key })).json();
      expect(after.items).toHaveLength(3);
      // An existing instance is still served at the limit.
      const existing = after.items[0].instanceId;
      expect(
        (await limited.request(`/instances/${existing}?wait=0`, { apiKey: key })).status,
      ).toBeLessThan(300);
    } finally {
      limited.close();
    }
  });

  it("503 fleet_full with Retry-After at MAX_INSTANCES", async () => {
    const current = await countClientPods();
    const full = startHandler(namespace, { MAX_INSTANCES: String(current + 1) });
    try {
      expect(
        (await full.request("/instances/last-slot?wait=0", { apiKey: "fleet-key-000000001" }))
          .status,
      ).toBe(202);
      const res = await full.request("/instances/no-slot?wait=0", {
        apiKey: "fleet-key-000000002",
      });
      await expectError(res, 503, "fleet_full");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await countClientPods()).toBe(current + 1);
    } finally {
      full.close();
    }
  });

  it("503 kubernetes_unavailable, fast, when the API server cannot be reached", async () => {
    const offline = startHandler(namespace, {}, unreachableKubeConfig());
    try {
      const started = Date.now();
      const res = await offline.request("/instances/ok", { apiKey: KEY });
      await expectError(res, 503, "kubernetes_unavailable");
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      offline.close();
    }
  });
});
