import type { V1PodTemplate } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "./clientpod.js";
import { buildPod, instancePortOf } from "./pod-spec.js";

const owner: ClientPod = {
  apiVersion: "gptme.ai/v1",
  kind: "ClientPod",
  metadata: {
    name: "gptme-client-0123456789abcdef",
    namespace: "ns",
    uid: "uid-1",
    resourceVersion: "1",
    creationTimestamp: new Date("2026-01-01T00:00:00Z"),
  },
  spec: { clientId: "a".repeat(32), instanceId: "default", podTemplate: "gptme-client" },
};
const defaults = { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi" };

const hostile: V1PodTemplate = {
  metadata: { name: "gptme-client" },
  template: {
    metadata: { labels: { app: "x", "gptme.ai/client": "spoofed" }, annotations: { note: "kept" } },
    spec: {
      hostNetwork: true,
      automountServiceAccountToken: true,
      securityContext: { runAsUser: 0, seccompProfile: { type: "Unconfined" } },
      initContainers: [{ name: "init", image: "busybox" }],
      containers: [
        {
          name: "server",
          image: "gptme",
          ports: [{ name: "http", containerPort: 8000, hostPort: 80 }],
          resources: { limits: { cpu: "2" }, requests: { memory: "128Mi" } },
          securityContext: {
            privileged: true,
            allowPrivilegeEscalation: true,
            runAsUser: 0,
            capabilities: { add: ["SYS_ADMIN", "NET_BIND_SERVICE"] },
          },
        },
        { name: "sidecar", image: "sidecar" },
      ],
    },
  },
};

describe("buildPod", () => {
  const pod = buildPod(hostile, owner, {
    annotations: { "gptme.ai/last-activity": "t" },
    resources: defaults,
  });

  it("names, labels and owns the pod for its ClientPod", () => {
    expect(pod.metadata?.name).toBe(owner.metadata.name);
    expect(pod.metadata?.labels).toEqual({
      app: "x",
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/client": owner.spec.clientId,
      "gptme.ai/instance": "default",
    });
    expect(pod.metadata?.annotations).toEqual({ note: "kept", "gptme.ai/last-activity": "t" });
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: "gptme.ai/v1",
        kind: "ClientPod",
        name: owner.metadata.name,
        uid: "uid-1",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it("enforces the restricted standard whatever the template says", () => {
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.hostNetwork).toBe(false);
    expect(pod.spec?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: undefined,
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      expect(c.securityContext?.privileged).toBe(false);
      expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext?.runAsUser).toBeUndefined();
      expect(c.securityContext?.capabilities?.drop).toEqual(["ALL"]);
      expect(c.securityContext?.seccompProfile).toEqual({ type: "RuntimeDefault" });
      for (const port of c.ports ?? []) expect(port.hostPort).toBeUndefined();
    }
    expect(pod.spec?.containers[0]?.securityContext?.capabilities?.add).toEqual([
      "NET_BIND_SERVICE",
    ]);
  });

  it("gives every container requests and limits, the template's first", () => {
    expect(pod.spec?.containers[0]?.resources).toEqual({
      limits: { cpu: "2", memory: "1Gi" },
      requests: { cpu: "2", memory: "128Mi" },
    });
    expect(pod.spec?.containers[1]?.resources).toEqual({
      limits: { cpu: "1", memory: "1Gi" },
      requests: { cpu: "1", memory: "1Gi" },
    });
    expect(pod.spec?.initContainers?.[0]?.resources?.limits).toEqual({ cpu: "1", memory: "1Gi" });
  });

  it("sets the instance's variables on the container serving http only, replacing the template's", () => {
    const template = structuredClone(hostile);
    const containers = template.template?.spec?.containers ?? [];
    containers[0] = {
      ...containers[0],
      name: "server",
      env: [
        { name: "GPTME_SERVER_TOKEN", value: "leaked" },
        { name: "KEEP", value: "1" },
      ],
    };
    const env = [
      { name: "GPTME_SERVER_TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "token" } } },
    ];
    const withToken = buildPod(template, owner, { annotations: {}, resources: defaults, env });
    expect(withToken.spec?.containers[0]?.env).toEqual([{ name: "KEEP", value: "1" }, ...env]);
    expect(withToken.spec?.containers[1]?.env).toBeUndefined();
    expect(JSON.stringify(withToken)).not.toContain("leaked");
  });

  it("mounts the instance's workspace claim when it has one", () => {
    const withWorkspace = buildPod(hostile, owner, {
      annotations: {},
      resources: defaults,
      workspacePvc: owner.metadata.name,
    });
    expect(withWorkspace.spec?.volumes).toEqual([
      { name: "workspace", persistentVolumeClaim: { claimName: owner.metadata.name } },
    ]);
    expect(withWorkspace.spec?.containers[0]?.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/workspace" },
    ]);
    expect(pod.spec?.volumes).toBeUndefined();
  });

  it("leaves the template untouched", () => {
    expect(hostile.template?.spec?.hostNetwork).toBe(true);
    expect(hostile.template?.spec?.containers[0]?.securityContext?.privileged).toBe(true);
  });
});

describe("instancePortOf", () => {
  it("is the container port named http", () => {
    expect(instancePortOf(buildPod(hostile, owner, { annotations: {}, resources: defaults }))).toBe(
      8000,
    );
  });
  it("is 5700 when no port is named http", () => {
    expect(
      instancePortOf({ spec: { containers: [{ name: "c", ports: [{ containerPort: 1 }] }] } }),
    ).toBe(5700);
  });
});
