import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { kubectlBinary } from "../support/kubectl.js";

const ROOT = resolve(import.meta.dirname, "../..");

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field
type Manifest = any;

/** What `kubectl apply -k` would apply, rendered by kubectl's own kustomize. */
function render(dir: string): Manifest[] {
  const out = execFileSync(kubectlBinary(), ["kustomize", resolve(ROOT, dir)], {
    encoding: "utf8",
  });
  return loadAllYaml(out) as Manifest[];
}

const find = (objects: Manifest[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata?.name === name);

describe("the kustomize base k8s/local", () => {
  it("lists every manifest users apply from k8s/local/fleet-operator/", () => {
    const listed = readFileSync(resolve(ROOT, "k8s/local/kustomization.yaml"), "utf8")
      .split("\n")
      .map((l) => /^\s+- fleet-operator\/(\S+)$/.exec(l)?.[1])
      .filter(Boolean);
    const files = readdirSync(resolve(ROOT, "k8s/local/fleet-operator"))
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    expect(listed).toEqual(files);
  });
});

describe("the overlay k8s/overlays/real-node", () => {
  const base = render("k8s/local");
  const overlay = render("k8s/overlays/real-node");

  it("changes nothing but images, placement, pull policy, the workspaces' StorageClass and the pool's size of the base's objects", () => {
    const strip = (o: Manifest) =>
      JSON.parse(
        JSON.stringify(o, (key, value) =>
          [
            "image",
            "imagePullPolicy",
            "nodeSelector",
            "tolerations",
            "WORKSPACE_STORAGE_CLASS",
            "POOL_SIZE",
          ].includes(key)
            ? undefined
            : value,
        ),
      );
    expect(overlay.map(strip)).toEqual(base.map(strip));
  });

  it("puts workspaces on the real node's own StorageClass; the base leaves the cluster's default", () => {
    const config = (objects: Manifest[]) => find(objects, "ConfigMap", "fleet-config").data;
    expect(config(overlay).WORKSPACE_STORAGE_CLASS).toBe("real-node-local");
    expect(config(base).WORKSPACE_STORAGE_CLASS).toBeUndefined();
  });

  it("turns the warm pool on on the real node; the base leaves it off", () => {
    const config = (objects: Manifest[]) => find(objects, "ConfigMap", "fleet-config").data;
    expect(config(overlay).POOL_SIZE).toBe("2");
    expect(config(base).POOL_SIZE).toBe("0");
  });

  it.each([
    ["Deployment", "fleet-handler", (o: Manifest) => o.spec.template.spec, "fleet-handler"],
    [
      "CronJob",
      "fleet-reaper",
      (o: Manifest) => o.spec.jobTemplate.spec.template.spec,
      "fleet-reaper",
    ],
    ["PodTemplate", "gptme-client", (o: Manifest) => o.template.spec, "gptme-server"],
  ])(
    "runs the %s %s's pods on the real node from the local image, never pulled",
    (kind, name, specOf, image) => {
      const spec = specOf(find(overlay, kind, name));
      expect(spec.nodeSelector).toEqual({ "gptme.ai/real-node": "true" });
      expect(spec.tolerations).toEqual([
        { key: "gptme.ai/real-node", operator: "Equal", value: "true", effect: "NoSchedule" },
      ]);
      expect(spec.containers[0].image).toBe(`localhost/gptme-fleet/${image}:local`);
      expect(spec.containers[0].imagePullPolicy).toBe("Never");
      // The base keeps what users deploy: the published image.
      expect(specOf(find(base, kind, name)).containers[0].image).toBe(
        `ghcr.io/gptme/${image}:latest`,
      );
    },
  );
});
