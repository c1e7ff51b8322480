import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ANNOTATION_SERVING_SINCE, healthUrlOf, isServing } from "./serving.js";

const seen = "2026-01-01T00:00:10.500Z";
const pod = (since: string | undefined, ready?: { status: string; at: string }): V1Pod => ({
  metadata: { name: "p", annotations: since ? { [ANNOTATION_SERVING_SINCE]: since } : {} },
  spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: 5700 }] }] },
  status: {
    phase: "Running",
    podIP: "127.42.0.7",
    conditions: ready
      ? [{ type: "Ready", status: ready.status, lastTransitionTime: ready.at as unknown as Date }]
      : [],
  },
});

describe("isServing", () => {
  it.each<[string, V1Pod, boolean]>([
    [
      "never seen answering, kubelet Ready (KWOK)",
      pod(undefined, { status: "True", at: "2026-01-01T00:00:00Z" }),
      false,
    ],
    [
      "seen answering, kubelet not Ready yet (probe period)",
      pod(seen, { status: "False", at: "2026-01-01T00:00:02Z" }),
      true,
    ],
    [
      "seen answering, kubelet went unready in the same second",
      pod(seen, { status: "False", at: "2026-01-01T00:00:10Z" }),
      true,
    ],
    [
      "seen answering, kubelet turned it unready since (crash)",
      pod(seen, { status: "False", at: "2026-01-01T00:00:11Z" }),
      false,
    ],
    [
      "seen answering, kubelet Ready",
      pod(seen, { status: "True", at: "2026-01-01T00:00:11Z" }),
      true,
    ],
    ["seen answering, no conditions yet", pod(seen), true],
    ["unreadable sighting", pod("yesterday"), false],
  ])("%s -> %s", (_what, p, serving) => {
    expect(isServing(p)).toBe(serving);
  });

  it("is false without an IP, whatever was seen", () => {
    const p = pod(seen);
    p.status = { ...p.status, podIP: undefined };
    expect(isServing(p)).toBe(false);
    expect(healthUrlOf(p)).toBeUndefined();
  });

  it("asks gptme-server's probe endpoint at the pod IP and http port", () => {
    expect(healthUrlOf(pod(seen))).toBe("http://127.42.0.7:5700/api/v2/server/health");
  });
});
