import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Kube, KubeApiError } from "../../shared/kube/client.js";
import { loadKubeCredentials } from "../../shared/kube/kubeconfig.js";
import { createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import { fleetServiceAccount } from "../support/rbac.js";

// The handler and the reaper as a pod runs them: no kubeconfig, the API server's address in
// the environment Kubernetes sets, the ServiceAccount's token and the cluster's CA in the
// directory it mounts. Here the directory is a temporary one with a token the API server
// issued for the fleet's own ServiceAccount.
describe("credentials inside a cluster: a pod's service account", () => {
  let namespace: string;
  let serviceAccountDir: string;

  beforeAll(async () => {
    namespace = await createTestNamespace("in-cluster");
    const kc = await fleetServiceAccount(namespace, "fleet-handler");
    const cluster = kc.getCurrentCluster();
    const token = kc.getCurrentUser()?.token;
    if (!cluster || !token) throw new Error("no cluster or token");
    serviceAccountDir = mkdtempSync(join(tmpdir(), "fleet-sa-"));
    const ca = cluster.caData
      ? Buffer.from(cluster.caData, "base64")
      : readFileSync(cluster.caFile ?? "");
    writeFileSync(join(serviceAccountDir, "ca.crt"), ca);
    writeFileSync(join(serviceAccountDir, "token"), token);
    const server = new URL(cluster.server);
    vi.stubEnv("KUBECONFIG", "");
    vi.stubEnv("KUBERNETES_SERVICE_HOST", server.hostname);
    vi.stubEnv("KUBERNETES_SERVICE_PORT", server.port);
  });

  afterAll(async () => {
    vi.unstubAllEnvs();
    await deleteTestNamespace(namespace);
  });

  it("reads and writes with the ServiceAccount's rights, over TLS checked against its CA", async () => {
    const kube = new Kube(await loadKubeCredentials({ serviceAccountDir }), namespace);
    try {
      const made = await kube.configMaps.create({
        metadata: { name: "in-cluster-check" },
        data: { a: "b" },
      });
      expect(made.created).toBe(true);
      expect((await kube.configMaps.get("in-cluster-check"))?.data).toEqual({ a: "b" });
      // Its Role lets it read one Secret by name: the ServiceAccount's token was sent.
      const refused = await kube.secrets.get("another-secret").catch((error: unknown) => error);
      expect((refused as KubeApiError).status).toBe(403);
    } finally {
      kube.close();
    }
  });

  // Last: it spoils the token file.
  it("sends the token it finds in the file now: a rotated token is used within a second", async () => {
    const kube = new Kube(await loadKubeCredentials({ serviceAccountDir }), namespace);
    try {
      expect(await kube.pods.get("none")).toBeUndefined();
      writeFileSync(join(serviceAccountDir, "token"), "not-a-token");
      await new Promise((r) => setTimeout(r, 1_100));
      const refused = await kube.pods.get("none").catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(KubeApiError);
      expect((refused as KubeApiError).status).toBe(401);
    } finally {
      kube.close();
    }
  });
});
