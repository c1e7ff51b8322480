import { describe, expect, it } from "vitest";
import { slotHolderOf, slotManifest, slotNameOf, slotOrder } from "./slots.js";

const clientId = "c".repeat(32);

describe("instance slots", () => {
  it("names a client's slots by a hash of its id and the slot's number", () => {
    expect(slotNameOf(clientId, 0)).toMatch(/^gptme-slot-[0-9a-f]{16}-0$/);
    expect(slotNameOf(clientId, 4)).toBe(slotNameOf(clientId, 4));
    expect(slotNameOf(clientId, 1)).not.toBe(slotNameOf("d".repeat(32), 1));
  });

  it("tries every slot once, from one the instance's name picks", () => {
    const order = slotOrder("gptme-client-0123456789abcdef", 5);
    expect([...order].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(slotOrder("gptme-client-0123456789abcdef", 5)).toEqual(order);
    const firsts = new Set(Array.from({ length: 50 }, (_, i) => slotOrder(`i-${i}`, 5)[0]));
    expect(firsts.size).toBeGreaterThan(1);
  });

  it("is owned by its instance, so that it goes with it", () => {
    const instance = {
      apiVersion: "gptme.ai/v1",
      kind: "ClientPod",
      metadata: { name: "gptme-client-0123456789abcdef", uid: "uid-1" },
      spec: { clientId, instanceId: "default" },
    };
    const slot = slotManifest(instance as never, 2);
    expect(slot.metadata?.name).toBe(slotNameOf(clientId, 2));
    expect(slotHolderOf(slot)).toEqual({ name: "gptme-client-0123456789abcdef", uid: "uid-1" });
    expect(slot.metadata?.labels?.["gptme.ai/kind"]).toBe("instance-slot");
  });
});
