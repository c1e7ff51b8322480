import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadYaml, type V1PodTemplate } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const file = resolve(ROOT, "k8s/images/gptme-server/Dockerfile");
const text = readFileSync(file, "utf8");
const finalStage = text.slice(text.lastIndexOf("\nFROM "));

// The image the PodTemplate runs: the e2e suite builds and runs it on the real node; these
// checks hold without one.
describe("k8s/images/gptme-server/Dockerfile", () => {
  it("passes hadolint", () => {
    const out = execFileSync("bash", [resolve(ROOT, "scripts/hadolint.sh"), file], {
      encoding: "utf8",
    });
    expect(out).toBe("");
  });

  it("installs the pinned gptme[server] and runs as the non-root uid the PodTemplate sets", () => {
    expect(text).toMatch(/^ARG GPTME_VERSION=\d+\.\d+\.\d+$/m);
    expect(text).toMatch(/pip install --no-cache-dir "gptme\[server\]==\$\{GPTME_VERSION\}"/);
    const template = loadYaml<V1PodTemplate>(
      readFileSync(
        resolve(ROOT, "k8s/local/fleet-operator/05-podtemplate-gptme-client.yaml"),
        "utf8",
      ),
    );
    const uid = template.template?.spec?.securityContext?.runAsUser;
    expect(finalStage).toMatch(new RegExp(`^USER ${uid}:${uid}$`, "m"));
    const container = template.template?.spec?.containers[0];
    const port = container?.ports?.find((p) => p.name === "http")?.containerPort;
    expect(finalStage).toContain(`EXPOSE ${port}`);
    // The template's command is on the image's PATH.
    expect(finalStage).toContain("ENV PATH=/opt/gptme/bin:$PATH");
    expect(container?.command?.[0]).toBe("gptme-server");
  });
});
