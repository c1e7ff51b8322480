import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ClientPod } from "../instance/clientpod.js";
import { adoptionPatch, LABEL_POOL, POOL_MEMBER } from "./member.js";

const _member = (
  name: string,
  extra: Partial<V1Pod["metadata"]> = {},
  phase = "Running",
): V1Pod => ({
  metadata: {
    name,
    labels: { [LABEL_POOL]: POOL_MEMBER },
    ownerReferences: [
      { apiVersion: "gptme.ai/v1", kind: "ClientPod", name, uid: `u-${name}`, controller: true },
    ],
    ...extra,
  },
  status: { phase, podIP: "127.42.0.3" },
});

describe("adoptionPatch", () => {
  it("tests that the member is unclaimed and still its member ClientPod's, then moves it", () => {
    const owner = {
      apiVersion: "gptme.ai/v1",
      kind: "ClientPod",
      metadata: { name: "gptme-client-0123456789abcdef", uid: "u-instance" },
      spec: { clientId: "c".repeat(32), instanceId: "default" },
    } as ClientPod;
    const ops = adoptionPatch("u-member", owner, { "gptme.ai/workspace": "new" });
    expect(ops.slice(0, 2)).toEqual([
      { op: "test", path: "/metadata/labels/gptme.ai~1pool", value: "member" },
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: "u-member" },
    ]);
    expect(ops).toContainEqual({
      op: "replace",
      path: "/metadata/ownerReferences",
      value: [
        {
          apiVersion: "gptme.ai/v1",
          kind: "ClientPod",
          name: "gptme-client-0123456789abcdef",
          uid: "u-instance",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(ops).toContainEqual({ op: "remove", path: "/metadata/labels/gptme.ai~1pool" });
    expect(ops).toContainEqual({
      op: "add",
      path: "/metadata/labels/gptme.ai~1client",
      value: "c".repeat(32),
    });
    expect(ops).toContainEqual({
      op: "add",
      path: "/metadata/annotations/gptme.ai~1workspace",
      value: "new",
    });
  });
});
