import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, clientPodManifest, KIND } from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import type { Kube } from "../../shared/kube/client.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubeconfigPath,
  restrictedPodSpec,
} from "../support/cluster.js";
import { kubectlTable } from "../support/kubectl.js";

// The foundation's proof: the CRD installs, ClientPods round-trip through the real API server
// (status subresource included), and a Pod they own runs on a KWOK node and is garbage
// collected with its owner.
describe("ClientPod CRD on the local control plane", () => {
  let namespace: string;
  let kube: Kube;
  const clientId = clientIdOf("crd-test-key-0001");
  const name = instanceNameOf(clientId, "default");

  beforeAll(async () => {
    namespace = await createTestNamespace("crd");
    kube = adminKube(namespace);
  });

  afterAll(async () => {
    kube?.close();
    await deleteTestNamespace(namespace);
  });

  it("creates, reads, patches status of, and deletes a ClientPod, and its Pod goes with it", async () => {
    const created = await kube.clientPods.create(
      clientPodManifest({ name, clientId, instanceId: "default", podTemplate: "gptme-client" }),
    );
    expect(created.created).toBe(true);
    if (!created.created) return;
    expect(created.object.apiVersion).toBe(API_VERSION);
    expect(created.object.kind).toBe(KIND);

    // A second create of the same name is "exists", not an error.
    const again = await kube.clientPods.create(
      clientPodManifest({ name, clientId, instanceId: "default", podTemplate: "gptme-client" }),
    );
    expect(again.created).toBe(false);

    const read = await kube.clientPods.get(name);
    expect(read?.spec).toEqual({ clientId, instanceId: "default", podTemplate: "gptme-client" });
    expect(read?.metadata.labels?.["gptme.ai/client"]).toBe(clientId);

    const lastActivity = "2026-01-02T03:04:05Z";
    const patched = await kube.clientPods.patchStatus(name, { lastActivity, phase: "Pending" });
    expect(patched?.status?.lastActivity?.toISOString()).toBe("2026-01-02T03:04:05.000Z");
    expect(patched?.status?.phase).toBe("Pending");
    // The status subresource ignores spec changes and the main resource ignores status.
    expect(patched?.spec.instanceId).toBe("default");

    const owner = created.object;
    const pod: V1Pod = {
      metadata: {
        name,
        labels: { "app.kubernetes.io/managed-by": "gptme-fleet" },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: KIND,
            name,
            uid: owner.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: restrictedPodSpec({
        name: "server",
        image: "example.invalid/gptme-server:test",
        ports: [{ name: "http", containerPort: 5700 }],
        resources: {
          limits: { cpu: "100m", memory: "64Mi" },
          requests: { cpu: "100m", memory: "64Mi" },
        },
      }),
    };
    expect((await kube.pods.create(pod)).created).toBe(true);

    const ready = await eventually(async () => {
      const current = await kube.pods.get(name);
      const isReady = current?.status?.conditions?.some(
        (c) => c.type === "Ready" && c.status === "True",
      );
      return isReady && current?.status?.podIP ? current : undefined;
    }, "the pod to be Ready with an IP");
    expect(ready.status?.phase).toBe("Running");
    expect(ready.spec?.nodeName).toBeTruthy();

    expect(await kube.clientPods.delete(name)).toBe("deleted");
    expect(await kube.clientPods.get(name)).toBeUndefined();
    expect(await kube.clientPods.delete(name)).toBe("absent");
    await eventually(
      async () => ((await kube.pods.get(name)) ? undefined : true),
      "the garbage collector to delete the pod",
    );
  });

  it("carries a plan: spec.plan with its timeouts, the label, and the Plan column", async () => {
    const planned = instanceNameOf(clientId, "planned");
    const created = await kube.clientPods.create(
      clientPodManifest({
        name: planned,
        clientId,
        instanceId: "planned",
        podTemplate: "gptme-client-pro",
        plan: { name: "pro", idleTimeoutSeconds: 7200, maxLifetimeSeconds: 86_400 },
      }),
    );
    expect(created.created).toBe(true);
    const read = await kube.clientPods.get(planned);
    expect(read?.spec).toEqual({
      clientId,
      instanceId: "planned",
      podTemplate: "gptme-client-pro",
      plan: "pro",
      idleTimeoutSeconds: 7200,
      maxLifetimeSeconds: 86_400,
    });
    expect(read?.metadata.labels?.["gptme.ai/plan"]).toBe("pro");
    const rows = kubectlTable(kubeconfigPath(), ["-n", namespace, "cpod", planned]);
    expect(rows).toEqual([expect.objectContaining({ NAME: planned, PLAN: "pro" })]);
    // A plan's name is a label value: the schema refuses anything else.
    await expect(
      kube.clientPods.patch(planned, { spec: { plan: "not a plan" } }),
    ).rejects.toMatchObject({ status: 422 });
    await kube.clientPods.delete(planned);
  });

  it("rejects a pod that breaks the restricted Pod Security Standard", async () => {
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await expect(
      core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: "privileged" },
          spec: { containers: [{ name: "c", image: "x" }] },
        },
      }),
    ).rejects.toMatchObject({ code: 403 });
  });
});
