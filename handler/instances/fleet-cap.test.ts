import { describe, expect, it } from "vitest";
import type { Kube } from "../../shared/kube/client.js";
import { FleetCap, isCountNeeded, QUOTA_READ_MS } from "./fleet-cap.js";

describe("isCountNeeded", () => {
  it("counts without a quota, or with one above MAX_INSTANCES", () => {
    expect(isCountNeeded(undefined, 200)).toBe(true);
    expect(isCountNeeded(201, 200)).toBe(true);
  });
  it("trusts a quota at or below MAX_INSTANCES", () => {
    expect(isCountNeeded(200, 200)).toBe(false);
    expect(isCountNeeded(100, 200)).toBe(false);
  });
});

describe("FleetCap", () => {
  const kubeReading = (caps: (number | Error | undefined)[]) => {
    const reads = { count: 0 };
    const kube = {
      quotas: {
        hardCountOf: async () => {
          const cap = caps[Math.min(reads.count++, caps.length - 1)];
          if (cap instanceof Error) throw cap;
          return cap;
        },
      },
    } as unknown as Kube;
    return { kube, reads };
  };

  it("reads the quotas once per QUOTA_READ_MS", async () => {
    let now = 0;
    const { kube, reads } = kubeReading([200, 300]);
    const cap = new FleetCap(kube, 200, () => now);
    expect(await cap.countNeeded()).toBe(false);
    now = QUOTA_READ_MS - 1;
    expect(await cap.countNeeded()).toBe(false);
    expect(reads.count).toBe(1);
    now = QUOTA_READ_MS;
    expect(await cap.countNeeded()).toBe(true);
    expect(reads.count).toBe(2);
  });

  it("counts when the quotas cannot be read", async () => {
    const { kube } = kubeReading([new Error("forbidden")]);
    expect(await new FleetCap(kube, 200).countNeeded()).toBe(true);
  });
});
