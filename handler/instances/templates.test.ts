import type { V1PodTemplate } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Kube } from "../../shared/kube/client.js";
import { TEMPLATE_TTL_MS, Templates } from "./templates.js";

const reading = (answers: (V1PodTemplate | undefined)[]) => {
  const reads = { count: 0 };
  const kube = {
    podTemplates: { get: async () => answers[Math.min(reads.count++, answers.length - 1)] },
  } as unknown as Kube;
  return { kube, reads };
};

describe("Templates", () => {
  it("reads a template once per TEMPLATE_TTL_MS", async () => {
    let now = 0;
    const v1 = { metadata: { name: "t", resourceVersion: "1" } };
    const v2 = { metadata: { name: "t", resourceVersion: "2" } };
    const { kube, reads } = reading([v1, v2]);
    const templates = new Templates(kube, () => now);
    expect(await templates.of("t")).toBe(v1);
    now = TEMPLATE_TTL_MS - 1;
    expect(await templates.of("t")).toBe(v1);
    expect(reads.count).toBe(1);
    now = TEMPLATE_TTL_MS;
    expect(await templates.of("t")).toBe(v2);
  });

  it("refuses a missing template with template_not_found, and reads it again next time", async () => {
    const found = { metadata: { name: "t" } };
    const { kube, reads } = reading([undefined, found]);
    const templates = new Templates(kube, () => 0);
    await expect(templates.of("t")).rejects.toMatchObject({ code: "template_not_found" });
    expect(await templates.of("t")).toBe(found);
    expect(reads.count).toBe(2);
  });
});
