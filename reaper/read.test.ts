import { describe, expect, it } from "vitest";
import { KubeApiError, KubeUnavailableError } from "../shared/kube/client.js";
import { MAX_RESTARTS, pages, startedFirst } from "./read.js";

const item = (name: string) => ({ metadata: { name } });
const names = (page: { metadata: { name: string } }[]) => page.map((i) => i.metadata.name);

/**
 * A list over `all` (sorted names) in pages of `limit`, whose continue token is the index of
 * the next item, failing first with each of `failures` in order (a function: the failure
 * for that call, or none).
 */
function fakeList(all: string[], failures: ((token: string | undefined) => Error | undefined)[]) {
  const calls: { continue?: string; labelSelector?: string; limit?: number }[] = [];
  const list = async (options: { continue?: string; labelSelector?: string; limit?: number }) => {
    calls.push(options);
    const failure = failures.shift()?.(options.continue);
    if (failure) throw failure;
    const from = Number(options.continue ?? 0);
    const to = from + (options.limit ?? 500);
    return {
      items: all.slice(from, to).map(item),
      continue: to < all.length ? String(to) : undefined,
      remaining: undefined,
    };
  };
  return { list, calls };
}

async function collect<T>(listing: AsyncIterable<T[]>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const page of listing) out.push(page);
  return out;
}

const expired = (token?: string) =>
  new KubeApiError(410, "Expired", "The provided continue parameter is too old", token);

describe("pages", () => {
  it("reads every page with the fleet's selector, retrying a page the API server was too busy for", async () => {
    const { list, calls } = fakeList(
      ["a", "b", "c"],
      [
        () => new KubeUnavailableError("429 Too Many Requests"),
        () => new KubeUnavailableError("503"),
      ],
    );
    expect((await collect(pages(list, { pageSize: 2 }))).map(names)).toEqual([["a", "b"], ["c"]]);
    // Two failed tries of the first page, then both pages.
    expect(calls.map((c) => c.continue)).toEqual([undefined, undefined, undefined, "2"]);
    expect(new Set(calls.map((c) => c.labelSelector))).toEqual(
      new Set(["app.kubernetes.io/managed-by=gptme-fleet"]),
    );
  });

  it("gives up after three retries, and at once on an error that is no overload", async () => {
    const busy = fakeList(
      ["a"],
      Array.from({ length: 4 }, () => () => new KubeUnavailableError("429")),
    );
    await expect(collect(pages(busy.list))).rejects.toThrow("429");
    expect(busy.calls).toHaveLength(4);
    const forbidden = fakeList(["a"], [() => new KubeApiError(403, "Forbidden", "no")]);
    await expect(collect(pages(forbidden.list))).rejects.toThrow("no");
    expect(forbidden.calls).toHaveLength(1);
  });

  it("reads on with the token a 410 offers when its continue token expired", async () => {
    // The second page's token expires; the API server offers one that reads on after "b".
    const { list, calls } = fakeList(
      ["a", "b", "c", "d", "e"],
      [() => undefined, (token) => (token === "2" ? expired("2") : undefined)],
    );
    const read = await collect(pages(list, { pageSize: 2 }));
    expect(read.flatMap(names)).toEqual(["a", "b", "c", "d", "e"]);
    expect(calls.map((c) => c.continue)).toEqual([undefined, "2", "2", "4"]);
  });

  it("starts the list again, skipping what it read, when a 410 offers no token", async () => {
    const { list, calls } = fakeList(
      ["a", "b", "c", "d", "e"],
      [() => undefined, () => undefined, (token) => (token === "4" ? expired() : undefined)],
    );
    const read = await collect(pages(list, { pageSize: 2 }));
    // Nothing twice, nothing lost, still in name order.
    expect(read.flatMap(names)).toEqual(["a", "b", "c", "d", "e"]);
    expect(calls.map((c) => c.continue)).toEqual([undefined, "2", "4", undefined, "2", "4"]);
  });

  it(`ends the listing after ${MAX_RESTARTS} restarts, and on a 410 of its first page`, async () => {
    const always = fakeList(
      ["a", "b", "c"],
      [() => undefined, ...Array.from({ length: 10 }, () => () => expired("1"))],
    );
    await expect(collect(pages(always.list, { pageSize: 1 }))).rejects.toThrow("too old");
    expect(always.calls).toHaveLength(2 + MAX_RESTARTS);
    const first = fakeList(["a"], [() => expired()]);
    await expect(collect(pages(first.list))).rejects.toThrow("too old");
  });

  it("slims each item as it arrives", async () => {
    const { list } = fakeList(["a", "b"], []);
    const slim = (i: { metadata?: { name?: string } }) => ({
      metadata: { name: `${i.metadata?.name}!` },
    });
    expect((await collect(pages(list, { slim }))).flatMap(names)).toEqual(["a!", "b!"]);
  });

  it("asks for the next page while the caller works on one, and stops when the caller does", async () => {
    const { list, calls } = fakeList(["a", "b", "c", "d"], []);
    const listing = pages(list, { pageSize: 1 });
    const first = await listing.next();
    expect(names(first.value ?? [])).toEqual(["a"]);
    // The second page is under way before the caller asks for it.
    expect(calls).toHaveLength(2);
    await listing.return(undefined);
    expect(calls).toHaveLength(2);
  });
});

describe("startedFirst", () => {
  it("has read the first page when it returns, and yields every page once", async () => {
    const { list, calls } = fakeList(["a", "b", "c"], []);
    const listing = await startedFirst(pages(list, { pageSize: 2 }));
    expect(calls.map((c) => c.continue)).toEqual([undefined, "2"]);
    expect((await collect(listing)).map(names)).toEqual([["a", "b"], ["c"]]);
  });
});
