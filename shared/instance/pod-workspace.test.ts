import type { V1PodSpec } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { withWorkspace } from "./pod-workspace.js";

const claim = { name: "workspace", persistentVolumeClaim: { claimName: "gptme-client-1" } };

describe("withWorkspace", () => {
  it("backs the template's own workspace volume with the claim, keeping its mounts", () => {
    const spec: V1PodSpec = {
      containers: [
        {
          name: "server",
          env: [{ name: "HOME", value: "/home/gptme" }],
          volumeMounts: [{ name: "workspace", mountPath: "/home/gptme" }],
        },
      ],
      volumes: [
        { name: "workspace", emptyDir: { sizeLimit: "1Gi" } },
        { name: "tmp", emptyDir: {} },
      ],
    };
    const result = withWorkspace(spec, "gptme-client-1", 0);
    expect(result.volumes).toEqual([claim, { name: "tmp", emptyDir: {} }]);
    expect(result.containers).toEqual(spec.containers);
    expect(spec.volumes?.[0]).toEqual({ name: "workspace", emptyDir: { sizeLimit: "1Gi" } });
  });

  it("mounts it at /workspace as HOME on the instance's container when the template has none", () => {
    const spec: V1PodSpec = {
      containers: [
        { name: "sidecar" },
        {
          name: "server",
          env: [
            { name: "XDG_DATA_HOME", value: "/elsewhere" },
            { name: "HOME", value: "/home/app" },
          ],
        },
      ],
    };
    const result = withWorkspace(spec, "gptme-client-1", 1);
    expect(result.volumes).toEqual([claim]);
    expect(result.containers[0]).toEqual({ name: "sidecar" });
    expect(result.containers[1]).toEqual({
      name: "server",
      volumeMounts: [{ name: "workspace", mountPath: "/workspace" }],
      env: [
        { name: "HOME", value: "/workspace" },
        { name: "XDG_DATA_HOME", value: "/workspace/.local/share" },
        { name: "XDG_CONFIG_HOME", value: "/workspace/.config" },
      ],
    });
  });
});
