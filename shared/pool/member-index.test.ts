import { describe, expect, it } from "vitest";
import { claimOrder, entriesOf, indexPatch } from "./member-index.js";

const entry = (uid: string, serving: boolean, tokenKeyId = "k1") =>
  JSON.stringify({ uid, tokenKeyId, serving });

describe("the pool's index", () => {
  it("adds and removes one member's entry with a merge patch of its own key", () => {
    expect(indexPatch("gptme-pool-1", { uid: "u", tokenKeyId: "k", serving: false })).toEqual({
      data: { "gptme-pool-1": '{"uid":"u","tokenKeyId":"k","serving":false}' },
    });
    expect(indexPatch("gptme-pool-1", null)).toEqual({ data: { "gptme-pool-1": null } });
  });

  it("reads its entries, leaving out unreadable ones", () => {
    const entries = entriesOf({
      data: { a: entry("u-a", true), b: "not json", c: JSON.stringify({ uid: 3 }) },
    });
    expect([...entries.keys()]).toEqual(["a"]);
    expect(entries.get("a")).toEqual({ uid: "u-a", tokenKeyId: "k1", serving: true });
  });

  it("offers serving members first, and only those of a known token key", () => {
    const entries = entriesOf({
      data: {
        starting: entry("u-1", false),
        serving: entry("u-2", true),
        other: entry("u-3", true, "k-unknown"),
      },
    });
    const order = claimOrder(
      entries,
      (id) => id === "k1",
      () => 0.5,
    );
    expect(order.map((m) => m.name)).toEqual(["serving", "starting"]);
  });
});
