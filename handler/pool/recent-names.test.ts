import { describe, expect, it } from "vitest";
import { RecentNames } from "./recent-names.js";

describe("RecentNames", () => {
  it("remembers a name for its TTL", () => {
    let now = 0;
    const names = new RecentNames(1_000, 10, () => now);
    names.add("a");
    now = 999;
    expect(names.has("a")).toBe(true);
    now = 1_000;
    expect(names.has("a")).toBe(false);
    expect(names.has("b")).toBe(false);
  });

  it("keeps at most `max`, forgetting the oldest, and drops expired ones as it goes", () => {
    let now = 0;
    const names = new RecentNames(1_000, 2, () => now);
    names.add("a");
    names.add("b");
    names.add("c");
    expect([names.has("a"), names.has("b"), names.has("c")]).toEqual([false, true, true]);
    now = 2_000;
    names.add("d");
    expect(names.size).toBe(1);
  });

  it("counts a name added again from its latest time", () => {
    let now = 0;
    const names = new RecentNames(1_000, 10, () => now);
    names.add("a");
    now = 800;
    names.add("a");
    now = 1_500;
    expect(names.has("a")).toBe(true);
  });
});
