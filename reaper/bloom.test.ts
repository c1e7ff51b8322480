import { describe, expect, it } from "vitest";
import { BloomFilter } from "./bloom.js";

describe("BloomFilter", () => {
  it("never forgets a name it was given", () => {
    const filter = new BloomFilter();
    const names = Array.from({ length: 20_000 }, (_, i) => `gptme-client-${i.toString(16)}`);
    for (const name of names) filter.add(name);
    expect(names.every((name) => filter.mightHave(name))).toBe(true);
  });

  it("rarely says maybe for a name it was not given, at a fleet's size", () => {
    const filter = new BloomFilter();
    for (let i = 0; i < 100_000; i++) filter.add(`uid-${i}`);
    let maybe = 0;
    for (let i = 0; i < 100_000; i++) if (filter.mightHave(`other-${i}`)) maybe++;
    // Expected about 1 in 10^5 at 100,000 names in 1 MiB.
    expect(maybe).toBeLessThan(20);
  });

  it("has its own seed: a false maybe in one pass is judged afresh in the next", () => {
    const small = () => new BloomFilter(12, 3);
    const added = Array.from({ length: 400 }, (_, i) => `in-${i}`);
    const probes = Array.from({ length: 2_000 }, (_, i) => `out-${i}`);
    const falseMaybes = (filter: BloomFilter) => {
      for (const name of added) filter.add(name);
      return new Set(probes.filter((name) => filter.mightHave(name)));
    };
    const first = falseMaybes(small());
    const second = falseMaybes(small());
    expect(first.size).toBeGreaterThan(0);
    expect([...first].filter((name) => second.has(name)).length).toBeLessThan(first.size);
  });
});
