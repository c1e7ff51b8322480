import { CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENTPOD_QUOTA } from "../../handler/instances/fleet-cap.js";
import {
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
} from "../support/cluster.js";
import { installFleetQuota, installTemplate, startHandler } from "../support/fleet.js";

// MAX_INSTANCES without counting the fleet: where a ResourceQuota caps ClientPods at it (as
// the manifests do), the API server refuses a create past the cap, and a new instance makes
// no LIST (whose cost grows with the fleet); where none does, it is counted as before.

describe("the fleet's cap, from its ResourceQuota", () => {
  let namespace: string;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);

  beforeAll(async () => {
    namespace = await createTestNamespace("fleet-cap");
    await installTemplate(namespace);
    await installFleetQuota(namespace, 2);
  });

  afterAll(async () => {
    await deleteTestNamespace(namespace);
  });

  it("trusts a quota at MAX_INSTANCES: no count, and a create past it is 503 fleet_full", async () => {
    const handler = startHandler(namespace, { MAX_INSTANCES: "2" });
    try {
      expect(
        (await handler.request("/instances/a?wait=0", { apiKey: "cap-key-0000001" })).status,
      ).toBe(202);
      expect(
        (await handler.request("/instances/b?wait=0", { apiKey: "cap-key-0000002" })).status,
      ).toBe(202);
      const calls = handler.counter.calls;
      expect(calls.filter((c) => c === "list resourcequotas")).toHaveLength(1);
      expect(calls.filter((c) => c === "list clientpods")).toEqual([]);
      const full = await handler.request("/instances/c?wait=0", { apiKey: "cap-key-0000003" });
      expect(full.status).toBe(503);
      expect((await full.json()).code).toBe("fleet_full");
      expect(full.headers.get("retry-after")).toBeTruthy();
      expect(await clientPodNames(namespace)).toHaveLength(2);
    } finally {
      handler.close();
    }
  });

  it("counts where the quota allows more than MAX_INSTANCES", async () => {
    await core.patchNamespacedResourceQuota(
      { name: "fleet-instances", namespace, body: { spec: { hard: { [CLIENTPOD_QUOTA]: "3" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const handler = startHandler(namespace, { MAX_INSTANCES: "1" });
    try {
      const res = await handler.request("/instances/d?wait=0", { apiKey: "cap-key-0000004" });
      expect(res.status).toBe(503);
      expect((await res.json()).code).toBe("fleet_full");
      expect(handler.counter.calls.filter((c) => c === "list clientpods").length).toBeGreaterThan(
        0,
      );
      expect(await clientPodNames(namespace)).toHaveLength(2);
    } finally {
      handler.close();
    }
  });
});
