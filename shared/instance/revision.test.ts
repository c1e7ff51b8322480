import type { V1PodTemplate } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { canonicalJson, revisionOf } from "./revision.js";

const settings = { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi", workspaces: true };
const template = (image: string, extra: object = {}): V1PodTemplate => ({
  metadata: { name: "gptme-client", resourceVersion: "17", uid: "tmpl-uid" },
  template: {
    metadata: { labels: { app: "gptme-server" } },
    spec: {
      containers: [
        { name: "gptme-server", image, ports: [{ name: "http", containerPort: 5700 }], ...extra },
      ],
    },
  },
});

describe("revisionOf", () => {
  it("is a short hash that depends on what the Pod runs, not on the template object's metadata", () => {
    const a = revisionOf(template("gptme-server:1"), settings);
    expect(a).toMatch(/^[0-9a-f]{10}$/);
    const same = template("gptme-server:1");
    same.metadata = { name: "gptme-client", resourceVersion: "99" };
    expect(revisionOf(same, settings)).toBe(a);
    expect(revisionOf(template("gptme-server:2"), settings)).not.toBe(a);
    expect(revisionOf(template("gptme-server:1", { args: ["--verbose"] }), settings)).not.toBe(a);
  });

  it("changes with what the fleet adds: resource defaults and workspaces", () => {
    const a = revisionOf(template("x"), settings);
    expect(revisionOf(template("x"), { ...settings, defaultMemoryLimit: "2Gi" })).not.toBe(a);
    expect(revisionOf(template("x"), { ...settings, workspaces: false })).not.toBe(a);
  });

  it("ignores key order and undefined fields", () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [2, { y: 1, x: 0 }] } })).toBe(
      '{"a":{"c":[2,{"x":0,"y":1}]},"b":1}',
    );
  });
});
