import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { AppsV1Api, BatchV1Api, CoreV1Api, NetworkingV1Api } from "@kubernetes/client-node";
import { beforeAll, describe, expect, it } from "vitest";
import { adminKubeConfig, eventually, kubeconfigPath } from "../support/cluster.js";
import { kubectl } from "../support/kubectl.js";
import {
  installFleetManifests,
  FLEET_MANIFESTS as MANIFESTS,
  FLEET_NAMESPACE as NAMESPACE,
} from "../support/manifests.js";

/**
 * What an apply could change of each object: its generation where it has one (bumped by a
 * change of its spec, not by a controller writing its status: the CronJob's moves each time
 * its schedule fires), else its resourceVersion (nothing else writes those objects).
 */
function versions(): Record<string, string> {
  const list = JSON.parse(kubectl(kubeconfigPath(), ["get", "-f", MANIFESTS, "-o", "json"]));
  type Item = {
    kind: string;
    metadata: { name: string; resourceVersion: string; generation?: number };
  };
  return Object.fromEntries(
    list.items.map((o: Item) => [
      `${o.kind}/${o.metadata.name}`,
      o.metadata.generation !== undefined
        ? `generation ${o.metadata.generation}`
        : o.metadata.resourceVersion,
    ]),
  );
}

describe("the manifests on a real API server", () => {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const batch = adminKubeConfig().makeApiClient(BatchV1Api);

  beforeAll(installFleetManifests);

  it("installs every object of the contract, in an order apply accepts", () => {
    const objects = Object.keys(versions()).sort();
    expect(objects).toEqual(
      [
        "ConfigMap/fleet-config",
        "IngressRoute/fleet-instance-gateway",
        "IngressRoute/fleet-instances",
        "IngressRoute/fleet-operator",
        "IngressRoute/fleet-preview-links",
        "IngressRoute/fleet-previews",
        "Middleware/apikey-from-path",
        "Middleware/retry-unanswered",
        "CronJob/fleet-reaper",
        "CustomResourceDefinition/clientpods.gptme.ai",
        "Deployment/fleet-handler",
        "FlowSchema/fleet-handler",
        "FlowSchema/fleet-handler-lists",
        "FlowSchema/fleet-reaper",
        "PriorityLevelConfiguration/fleet-background",
        "PriorityLevelConfiguration/fleet-handler",
        "Namespace/gptme-fleet",
        "NetworkPolicy/client-pods-egress",
        "NetworkPolicy/client-pods-ingress",
        "PodDisruptionBudget/fleet-handler",
        "PodTemplate/gptme-client",
        "ResourceQuota/fleet-instances",
        "ResourceQuota/fleet-workspaces",
        "Role/fleet-handler",
        "Role/fleet-reaper",
        "RoleBinding/fleet-handler",
        "RoleBinding/fleet-reaper",
        "Service/fleet-handler",
        "ServiceAccount/fleet-handler",
        "ServiceAccount/fleet-reaper",
      ].sort(),
    );
  });

  it("applies again without changing anything", () => {
    const before = versions();
    kubectl(kubeconfigPath(), ["apply", "-f", MANIFESTS]);
    expect(versions()).toEqual(before);
  });

  it("enforces the restricted Pod Security Standard in the fleet's namespace", async () => {
    const ns = await core.readNamespace({ name: NAMESPACE });
    expect(ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    await expect(
      core.createNamespacedPod({
        namespace: NAMESPACE,
        body: { metadata: { name: "root-pod" }, spec: { containers: [{ name: "c", image: "x" }] } },
      }),
    ).rejects.toMatchObject({ code: 403 });
  });

  it("runs the reaper by hand: create job --from=cronjob/fleet-reaper", async () => {
    const job = `reap-now-${randomBytes(3).toString("hex")}`;
    kubectl(kubeconfigPath(), [
      "-n",
      NAMESPACE,
      "create",
      "job",
      `--from=cronjob/fleet-reaper`,
      job,
    ]);
    try {
      const made = await batch.readNamespacedJob({ name: job, namespace: NAMESPACE });
      expect(made.spec?.template.spec?.serviceAccountName).toBe("fleet-reaper");
      expect(made.spec?.template.spec?.containers[0]?.image).toContain("fleet-reaper");
      // The Job controller (kube-controller-manager) makes its pod, admitted under "restricted".
      await eventually(async () => {
        const pods = await core.listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: `job-name=${job}`,
        });
        return pods.items.length > 0 ? true : undefined;
      }, "the job's pod");
    } finally {
      await batch.deleteNamespacedJob({
        name: job,
        namespace: NAMESPACE,
        propagationPolicy: "Background",
      });
    }
  });

  it("lets the reaper's pods reach client pods on http, as the handler's do", async () => {
    const networking = adminKubeConfig().makeApiClient(NetworkingV1Api);
    const policy = await networking.readNamespacedNetworkPolicy({
      name: "client-pods-ingress",
      namespace: NAMESPACE,
    });
    const cronJob = await batch.readNamespacedCronJob({
      name: "fleet-reaper",
      namespace: NAMESPACE,
    });
    const reaperLabels = cronJob.spec?.jobTemplate.spec?.template.metadata?.labels ?? {};
    const rule = policy.spec?.ingress?.find((r) =>
      r._from?.some((peer) =>
        Object.entries(peer.podSelector?.matchLabels ?? { none: "" }).every(
          ([k, v]) => reaperLabels[k] === v,
        ),
      ),
    );
    expect(rule?.ports).toEqual([{ protocol: "TCP", port: "http" }]);
  });

  it("installs Traefik with the apikey plugin mounted where it loads local plugins", async () => {
    kubectl(kubeconfigPath(), ["apply", "-k", resolve(MANIFESTS, "../traefik")]);
    const configMaps = await core.listNamespacedConfigMap({ namespace: "traefik" });
    const plugin = configMaps.items.find((c) =>
      c.metadata?.name?.startsWith("traefik-plugin-apikey"),
    );
    expect(Object.keys(plugin?.data ?? {}).sort()).toEqual([".traefik.yml", "apikey.go", "go.mod"]);
    const deployment = await adminKubeConfig()
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: "traefik", namespace: "traefik" });
    const mount = deployment.spec?.template.spec?.containers[0]?.volumeMounts?.find(
      (m) => m.name === "apikey-plugin",
    );
    const workingDir = deployment.spec?.template.spec?.containers[0]?.workingDir;
    expect(`${mount?.mountPath}`).toBe(
      `${workingDir}/plugins-local/src/github.com/gptme/traefik-apikey-from-path`,
    );
    // The ReplicaSet's pods pass the restricted standard the traefik namespace enforces.
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: "traefik" });
      return pods.items.length >= 2 ? true : undefined;
    }, "Traefik's pods");
  });
});
