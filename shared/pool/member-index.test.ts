import { describe, expect, it } from "vitest";
import { claimOrder, countOf, entriesOf, indexPatch } from "./member-index.js";

const entry = (uid: string, serving: boolean, tokenKeyId = "k1", plan?: string) =>
  JSON.stringify({ uid, tokenKeyId, serving, plan });

describe("the pool's index", () => {
  it("adds and removes members' entries with a merge patch of their own keys only", () => {
    expect(
      indexPatch(
        new Map([["gptme-pool-1", { uid: "u", tokenKeyId: "k", serving: false, plan: "pro" }]]),
      ),
    ).toEqual({
      data: { "gptme-pool-1": '{"uid":"u","tokenKeyId":"k","serving":false,"plan":"pro"}' },
    });
    expect(indexPatch(new Map([["gptme-pool-1", null]]))).toEqual({
      data: { "gptme-pool-1": null },
    });
    expect(
      indexPatch(
        new Map([
          ["gptme-pool-1", null],
          ["gptme-pool-2", { uid: "v", tokenKeyId: "k", serving: true, plan: "default" }],
        ]),
      ),
    ).toEqual({
      data: {
        "gptme-pool-1": null,
        "gptme-pool-2": '{"uid":"v","tokenKeyId":"k","serving":true,"plan":"default"}',
      },
    });
  });

  it("reads its entries, leaving out unreadable ones; one from before plans is the default plan's", () => {
    const entries = entriesOf({
      data: { a: entry("u-a", true), b: "not json", c: JSON.stringify({ uid: 3 }) },
    });
    expect([...entries.keys()]).toEqual(["a"]);
    expect(entries.get("a")).toEqual({
      uid: "u-a",
      tokenKeyId: "k1",
      serving: true,
      plan: "default",
    });
  });

  it("offers serving members first, and only those of the client's plan and a known token key", () => {
    const entries = entriesOf({
      data: {
        starting: entry("u-1", false, "k1", "free"),
        serving: entry("u-2", true, "k1", "free"),
        other: entry("u-3", true, "k-unknown", "free"),
        pro: entry("u-4", true, "k1", "pro"),
      },
    });
    const order = claimOrder(
      entries,
      "free",
      (id) => id === "k1",
      () => 0.5,
    );
    expect(order.map((m) => m.name)).toEqual(["serving", "starting"]);
    expect(claimOrder(entries, "pro", () => true).map((m) => m.name)).toEqual(["pro"]);
    expect(claimOrder(entries, "gold", () => true)).toEqual([]);
    expect([countOf(entries, "free"), countOf(entries, "pro"), countOf(entries, "gold")]).toEqual([
      3, 1, 0,
    ]);
  });
});
