import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { inject } from "vitest";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";

/** The fleet's API client in `namespace`, with the test cluster's administrator's credentials. */
export function adminKube(namespace: string): Kube {
  return new Kube(credentialsOf(adminKubeConfig()), namespace);
}

/** Credentials of the test cluster's administrator. */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return kc;
}

export const kubeconfigPath = (): string => inject("kubeconfig");

/** client-node's option for a merge patch (a status written as a kubelet would). */
export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/**
 * A fresh namespace under the "restricted" Pod Security Standard, as the fleet's own is:
 * each test file gets one, so files never see each other's objects.
 */
export async function createTestNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespace({
      body: {
        metadata: {
          name,
          labels: {
            "gptme.ai/test": "true",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
          },
        },
      },
    });
  return name;
}

export async function deleteTestNamespace(name: string): Promise<void> {
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name })
    .catch(() => undefined);
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Credentials for an API server that is not there (nothing listens on port 9). */
export function unreachableKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "gone", server: "https://127.0.0.1:9", skipTLSVerify: true }],
    users: [{ name: "nobody", token: "x" }],
    contexts: [{ name: "gone", cluster: "gone", user: "nobody" }],
    currentContext: "gone",
  });
  return kc;
}

/** A kubeconfig file like the admin's, but reaching the API server through local `port`. */
export function kubeconfigVia(port: number): string {
  const kc = adminKubeConfig();
  const current = kc.getCurrentCluster()?.name;
  kc.clusters = kc.clusters.map((c) =>
    c.name === current ? { ...c, server: `https://127.0.0.1:${port}` } : c,
  );
  const file = join(mkdtempSync(join(tmpdir(), "fleet-kc-")), "kubeconfig");
  writeFileSync(file, kc.exportConfig());
  return file;
}

/** A ClientPod's `status.lastActivity` ("" until one is written), read fresh as the admin. */
export async function lastActivityOf(namespace: string, name: string): Promise<string> {
  const kube = adminKube(namespace);
  try {
    return (await kube.clientPods.get(name))?.status?.lastActivity?.toISOString() ?? "";
  } finally {
    kube.close();
  }
}

/** Names of the ClientPods in a namespace, sorted. */
export async function clientPodNames(namespace: string): Promise<string[]> {
  const list = (await adminKubeConfig().makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: "gptme.ai",
    version: "v1",
    namespace,
    plural: "clientpods",
  })) as {
    items: { metadata: { name: string } }[];
  };
  return list.items.map((cp) => cp.metadata.name).sort();
}

/**
 * A Pod spec the "restricted" Pod Security Standard admits (as the test namespaces enforce):
 * one container (`c`, image `x`, unless `container` says otherwise), `spec` added.
 */
export function restrictedPodSpec(
  container: Partial<V1Container> = {},
  spec: Partial<V1PodSpec> = {},
): V1PodSpec {
  return {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "c",
        image: "x",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        ...container,
      },
    ],
    ...spec,
  };
}
