import { describe, expect, it } from "vitest";
import { InstanceHints } from "./hints.js";

describe("InstanceHints", () => {
  it("remembers a pool member's Pod name, and an instance's own name needs no entry", () => {
    const hints = new InstanceHints();
    expect(hints.podNameOf("gptme-client-a")).toBe("gptme-client-a");
    hints.notePodName("gptme-client-a", "gptme-pool-1");
    expect(hints.podNameOf("gptme-client-a")).toBe("gptme-pool-1");
    hints.notePodName("gptme-client-a", "gptme-client-a");
    expect(hints.podNameOf("gptme-client-a")).toBe("gptme-client-a");
  });

  it("keeps the latest activity known", () => {
    const hints = new InstanceHints();
    hints.noteActivity("i", new Date(2_000));
    hints.noteActivity("i", new Date(1_000));
    expect(hints.lastActivityOf("i")).toEqual(new Date(2_000));
    hints.forget("i");
    expect(hints.lastActivityOf("i")).toBeUndefined();
  });

  it("keeps each fact when the other is written", () => {
    const hints = new InstanceHints();
    hints.notePodName("i", "gptme-pool-1");
    hints.noteActivity("i", new Date(3_000));
    expect(hints.podNameOf("i")).toBe("gptme-pool-1");
    hints.notePodName("i", "gptme-pool-2");
    expect(hints.lastActivityOf("i")).toEqual(new Date(3_000));
  });

  it("is bounded: the least recently written are forgotten first", () => {
    const hints = new InstanceHints();
    for (let i = 0; i < 10_005; i++) hints.noteActivity(`i-${i}`, new Date(i));
    expect(hints.size).toBe(10_000);
    expect(hints.lastActivityOf("i-0")).toBeUndefined();
    expect(hints.lastActivityOf("i-10004")).toEqual(new Date(10_004));
  });

  it("forgets an instance not written for ten minutes", () => {
    let now = 0;
    const hints = new InstanceHints(() => now);
    hints.notePodName("gptme-client-a", "gptme-pool-1");
    now = 10 * 60_000;
    expect(hints.podNameOf("gptme-client-a")).toBe("gptme-pool-1");
    now += 1;
    expect(hints.podNameOf("gptme-client-a")).toBe("gptme-client-a");
    expect(hints.size).toBe(0);
  });
});
