import { describe, expect, it } from "vitest";
import { KubeApiError, KubeUnavailableError } from "../shared/kube/client.js";
import { readAll } from "./read.js";

/** A list that answers `pages` in turn, failing first with each of `failures` in order. */
function flakyList(pages: string[][], failures: Error[]) {
  const calls: { continue?: string; labelSelector?: string }[] = [];
  const list = async (options: { continue?: string; labelSelector?: string }) => {
    calls.push(options);
    const failure = failures.shift();
    if (failure) throw failure;
    const index = Number(options.continue ?? 0);
    const next = index + 1 < pages.length ? String(index + 1) : undefined;
    return { items: pages[index] ?? [], continue: next, remaining: undefined };
  };
  return { list, calls };
}

describe("readAll", () => {
  it("reads every page, retrying a page the API server was too busy for (429 maps to unavailable)", async () => {
    const { list, calls } = flakyList(
      [["a", "b"], ["c"]],
      [new KubeUnavailableError("429 Too Many Requests"), new KubeUnavailableError("503")],
    );
    expect(await readAll(list)).toEqual(["a", "b", "c"]);
    // Two failed tries of the first page, then both pages; every call with the fleet's selector.
    expect(calls.map((c) => c.continue)).toEqual([undefined, undefined, undefined, "1"]);
    expect(new Set(calls.map((c) => c.labelSelector))).toEqual(
      new Set(["app.kubernetes.io/managed-by=gptme-fleet"]),
    );
  });

  it("gives up after three retries, and at once on an error that is no overload", async () => {
    const busy = flakyList(
      [["a"]],
      Array.from({ length: 4 }, () => new KubeUnavailableError("429")),
    );
    await expect(readAll(busy.list)).rejects.toThrow("429");
    expect(busy.calls).toHaveLength(4);
    const forbidden = flakyList([["a"]], [new KubeApiError(403, "Forbidden", "no")]);
    await expect(readAll(forbidden.list)).rejects.toThrow("no");
    expect(forbidden.calls).toHaveLength(1);
  });
});
