import { describe, expect, it } from "vitest";
import { joinByName, OutOfOrderError } from "./join.js";

const item = (name: string) => ({ metadata: { name } });

async function* listing(pages: string[][]) {
  for (const page of pages) yield page.map(item);
}

async function batches(left: string[][], right: string[][]) {
  const out: [string[], string[]][] = [];
  for await (const batch of joinByName(listing(left), listing(right))) {
    out.push([batch.left.map((i) => i.metadata.name), batch.right.map((i) => i.metadata.name)]);
  }
  return out;
}

describe("joinByName", () => {
  it("puts every name with its namesake in one batch, whatever the page boundaries", async () => {
    const left = [["a", "c"], ["e", "g"], ["i"]];
    const right = [["a"], ["b", "c", "d", "e"], [], ["g", "h", "i", "j"]];
    const out = await batches(left, right);
    // Every name of either side once, in order.
    expect(out.flatMap(([l]) => l)).toEqual(["a", "c", "e", "g", "i"]);
    expect(out.flatMap(([, r]) => r)).toEqual(["a", "b", "c", "d", "e", "g", "h", "i", "j"]);
    for (const [l, r] of out) {
      for (const name of l) {
        const anywhere = right.flat().includes(name);
        expect(!anywhere || r.includes(name), `${name} with its namesake`).toBe(true);
      }
    }
  });

  it("never holds more than a page or two of either side", async () => {
    const page = (from: number) =>
      Array.from({ length: 10 }, (_, i) => `n${String(from + i).padStart(5, "0")}`);
    const left = Array.from({ length: 50 }, (_, p) => page(p * 10));
    const right = Array.from({ length: 50 }, (_, p) => page(p * 10 + 5));
    let most = 0;
    for (const [l, r] of await batches(left, right)) most = Math.max(most, l.length + r.length);
    expect(most).toBeLessThanOrEqual(20);
  });

  it("joins an empty side", async () => {
    expect(await batches([], [["a", "b"]])).toEqual([[[], ["a", "b"]]]);
    expect(await batches([["a"]], [])).toEqual([[["a"], []]]);
    expect(await batches([], [])).toEqual([]);
  });

  it("refuses a list that is not in name order rather than pair the wrong objects", async () => {
    await expect(batches([["b", "a"]], [["a"]])).rejects.toBeInstanceOf(OutOfOrderError);
    await expect(batches([["a"]], [["c"], ["b"]])).rejects.toThrow(/not in name order/);
  });
});
