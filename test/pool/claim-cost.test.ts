import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POOL_NAME_PREFIX } from "../../shared/instance/parts.js";
import { POOL_INDEX_NAME } from "../../shared/pool/member-index.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  installFleetQuota,
  installTemplate,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { poolPass } from "../support/pool.js";

// What a claim costs the API server before its answer, in a namespace set up as the
// manifests do (workspaces on, the fleet's cap a ResourceQuota): the warm read, the kept
// workspace's two reads, and three writes (the instance, its slot, the adoption). The pool's
// index is read once a second per replica, not per claim.

const POOL_SIZE = 3;
const ENV = {
  POOL_SIZE: String(POOL_SIZE),
  INSTANCE_TOKEN_SECRET: "claim-cost-token-key-0123456789abcdef0123456789",
  MAX_INSTANCES: "50",
  WORKSPACES: "on",
};

describe("a pool claim", () => {
  let namespace: string;
  let handler: TestHandler;
  let health: PodHealth;
  /** The handler's clock, held still while a test needs one second to last. */
  let held: Date | undefined;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const clientPod = (namespace: string, name: string) => ({
    group: "gptme.ai",
    version: "v1",
    plural: "clientpods",
    namespace,
    name,
  });

  beforeAll(async () => {
    namespace = await createTestNamespace("claim-cost");
    health = answerPodHealth(namespace);
    await installTemplate(namespace);
    await installFleetQuota(namespace, 50);
    handler = startHandler(namespace, ENV, undefined, () => held ?? new Date());
    // Every member seen answering (a pass records the members it sees answer in the index):
    // claimed, one is ready at once.
    await eventually(async () => {
      await poolPass(namespace, ENV, POOL_SIZE);
      const index = await core.readNamespacedConfigMap({ name: POOL_INDEX_NAME, namespace });
      const entries = Object.values(index.data ?? {}).map((e) => JSON.parse(e));
      return entries.filter((e) => e.serving).length >= POOL_SIZE ? true : undefined;
    }, "the pool's members to answer");
  });

  afterAll(async () => {
    handler?.close();
    await health?.stop();
    await deleteTestNamespace(namespace);
  });

  it("answers ready after the warm read, the kept workspace's reads and three writes", async () => {
    held = new Date();
    // The first one reads what a replica reads once (the token key, the pool's index).
    const first = await handler.request("/instances/one?wait=30", { apiKey: "claim-key-000001" });
    expect(first.status).toBe(200);
    // Its follow-up done (the member's own ClientPod is its last step), so that only the
    // second claim's calls are counted.
    const member = (await first.json()).endpoint.path.split("/").pop();
    await eventually(async () => {
      const left = await custom
        .getNamespacedCustomObject(clientPod(namespace, member))
        .catch(() => undefined);
      return left ? undefined : true;
    }, "the first claim's follow-up");
    handler.counter.reset();
    const res = await handler.request("/instances/two?wait=30", { apiKey: "claim-key-000002" });
    held = undefined;
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: "ready", created: true });
    expect(body.endpoint.path).toContain(`/${POOL_NAME_PREFIX}`);
    // In the order made; what follows the adoption is the claim's follow-up, after the answer.
    const calls = handler.counter.calls;
    expect(calls.slice(0, calls.indexOf("patch pods") + 1)).toEqual([
      "get pods", // the warm read, which found none
      "get persistentvolumeclaims", // a workspace the instance kept: of its own name,
      "get configmaps", // or a member's its alias names
      "create clientpods",
      "create configmaps", // its slot: the client's instance limit
      "patch pods", // the adoption
    ]);
  });
});
