import { describe, expect, it } from "vitest";
import { lastUsedOf, mountedWorkspacesOf, workspacePvc, workspaceStateOf } from "./workspace.js";

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
