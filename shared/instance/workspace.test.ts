import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  isSmallerThan,
  lastUsedOf,
  mountedWorkspacesOf,
  storageBytesOf,
  workspacePvc,
  workspaceStateOf,
} from "./workspace.js";

const owner = {
  name: "gptme-client-0123456789abcdef",
  uid: "uid-1",
  clientId: "c".repeat(32),
  instanceId: "default",
};
const now = new Date("2026-01-01T00:00:00Z");

describe("workspacePvc", () => {
  it("is named and labelled like its instance, owned by nobody, and records who it was made for", () => {
    const claim = workspacePvc(owner, { size: "2Gi", storageClass: undefined }, now);
    expect(claim.metadata).toEqual({
      name: owner.name,
      labels: {
        "app.kubernetes.io/managed-by": "gptme-fleet",
        "gptme.ai/client": owner.clientId,
        "gptme.ai/instance": "default",
      },
      annotations: {
        "gptme.ai/created-for": "uid-1",
        "gptme.ai/last-used": "2026-01-01T00:00:00.000Z",
      },
    });
    expect(claim.metadata).not.toHaveProperty("ownerReferences");
    expect(claim.spec).toEqual({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "2Gi" } },
    });
  });

  it("names a storage class only when one is configured (else the cluster's default applies)", () => {
    const claim = workspacePvc(owner, { size: "1Gi", storageClass: "fast" }, now);
    expect(claim.spec?.storageClassName).toBe("fast");
  });
});

describe("workspaceStateOf", () => {
  const claim = workspacePvc(owner, { size: "1Gi", storageClass: undefined }, now);
  it("is new for the instance it was made for, kept for any later one", () => {
    expect(workspaceStateOf(claim, "uid-1")).toBe("new");
    expect(workspaceStateOf(claim, "uid-2")).toBe("kept");
    expect(workspaceStateOf({ metadata: { name: "x" } }, "uid-1")).toBe("kept");
  });
});

describe("lastUsedOf", () => {
  it("is the recorded use, else the claim's creation", () => {
    expect(lastUsedOf(workspacePvc(owner, { size: "1Gi", storageClass: undefined }, now))).toEqual(
      now,
    );
    const created = "2025-12-01T00:00:00Z";
    expect(lastUsedOf({ metadata: { creationTimestamp: created as unknown as Date } })).toEqual(
      new Date(created),
    );
    expect(
      lastUsedOf({
        metadata: {
          creationTimestamp: new Date(created),
          annotations: { "gptme.ai/last-used": "yesterday" },
        },
      }),
    ).toEqual(new Date(created));
    expect(lastUsedOf({ metadata: {} })).toBeUndefined();
  });
});

describe("mountedWorkspacesOf", () => {
  it("is every claim a Pod mounts", () => {
    const pods = [
      {
        spec: {
          containers: [],
          volumes: [
            { name: "workspace", persistentVolumeClaim: { claimName: "a" } },
            { name: "tmp", emptyDir: {} },
          ],
        },
      },
      { spec: { containers: [] } },
      {
        spec: {
          containers: [],
          volumes: [{ name: "w", persistentVolumeClaim: { claimName: "b" } }],
        },
      },
    ];
    expect(mountedWorkspacesOf(pods)).toEqual(new Set(["a", "b"]));
  });
});

describe("workspace sizes", () => {
  it("reads storage quantities as Kubernetes writes them", () => {
    expect(storageBytesOf("1Gi")).toBe(2 ** 30);
    expect(storageBytesOf("10Gi")).toBe(10 * 2 ** 30);
    expect(storageBytesOf("500M")).toBe(5e8);
    expect(storageBytesOf("1.5Ti")).toBe(1.5 * 2 ** 40);
    expect(storageBytesOf("2147483648")).toBe(2 ** 31);
    expect(storageBytesOf("lots")).toBeUndefined();
    expect(storageBytesOf(undefined)).toBeUndefined();
  });

  it("says a claim is smaller than a plan's size by what it asks for, never by a guess", () => {
    const claim = (storage?: string): V1PersistentVolumeClaim => ({
      spec: { resources: { requests: storage === undefined ? {} : { storage } } },
    });
    expect(isSmallerThan(claim("1Gi"), "10Gi")).toBe(true);
    expect(isSmallerThan(claim("10Gi"), "10Gi")).toBe(false);
    expect(isSmallerThan(claim("20Gi"), "10Gi")).toBe(false);
    expect(isSmallerThan(claim("1024Mi"), "1Gi")).toBe(false);
    expect(isSmallerThan(claim(undefined), "10Gi")).toBe(false);
    expect(isSmallerThan(claim("1Gi"), "nonsense")).toBe(false);
  });

  it("labels a claim with its instance's plan", () => {
    const claim = workspacePvc({ ...owner, plan: "pro" }, { size: "10Gi", storageClass: "x" }, now);
    expect(claim.metadata?.labels?.["gptme.ai/plan"]).toBe("pro");
  });
});
