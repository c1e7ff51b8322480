import type { V1ConfigMap } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Kube } from "../../shared/kube/client.js";
import { MemberIndexView } from "./member-index-view.js";

/** The ConfigMap calls the view makes, against one stored index. */
function fakeKube(index: V1ConfigMap | undefined) {
  const calls: string[] = [];
  let stored = index;
  const kube = {
    configMaps: {
      get: async () => {
        calls.push("get");
        return stored;
      },
      patch: async (_name: string, patch: { data: Record<string, string | null> }) => {
        calls.push(`patch ${JSON.stringify(patch.data)}`);
        if (!stored) return undefined;
        const data = { ...stored.data };
        for (const [key, value] of Object.entries(patch.data)) {
          if (value === null) delete data[key];
          else data[key] = value;
        }
        stored = { ...stored, data };
        return stored;
      },
      create: async (made: V1ConfigMap) => {
        calls.push(`create ${JSON.stringify(made.data)}`);
        stored = made;
        return { created: true, object: made };
      },
    },
  } as unknown as Kube;
  return { kube, calls };
}

const entry = { uid: "u", tokenKeyId: "k", serving: true, plan: "default" };
const stored = (names: string[]): V1ConfigMap => ({
  data: Object.fromEntries(names.map((name) => [name, JSON.stringify(entry)])),
});

describe("MemberIndexView", () => {
  it("reads the index once per TTL, concurrent claims sharing the read", async () => {
    let now = 0;
    const { kube, calls } = fakeKube(stored(["a", "b"]));
    const view = new MemberIndexView(kube, { ttlMs: 1_000, gatherMs: 10 }, () => now);
    const [first, second] = await Promise.all([view.entries(), view.entries()]);
    expect([...first.keys()]).toEqual(["a", "b"]);
    expect(second).toBe(first);
    now = 999;
    await view.entries();
    expect(calls).toEqual(["get"]);
    now = 1_000;
    await view.entries();
    expect(calls).toEqual(["get", "get"]);
  });

  it("does not keep a failed read", async () => {
    let fail = true;
    const kube = {
      configMaps: {
        get: async () => {
          if (fail) throw new Error("unavailable");
          return stored(["a"]);
        },
      },
    } as unknown as Kube;
    const view = new MemberIndexView(kube, { ttlMs: 1_000, gatherMs: 10 }, () => 0);
    await expect(view.entries()).rejects.toThrow("unavailable");
    fail = false;
    expect([...(await view.entries()).keys()]).toEqual(["a"]);
  });

  it("writes the changes of one gathering in one merge patch, the next ones in another", async () => {
    const { kube, calls } = fakeKube(stored(["a", "b"]));
    const view = new MemberIndexView(kube, { ttlMs: 1_000, gatherMs: 10 });
    await Promise.all([view.change("a", null), view.change("c", entry), view.change("b", null)]);
    expect(calls).toEqual([
      `patch {"a":null,"c":${JSON.stringify(JSON.stringify(entry))},"b":null}`,
    ]);
    await view.change("c", null);
    expect(calls.at(-1)).toBe('patch {"c":null}');
  });

  it("makes the index with the first entries when there is none, and removes nothing from none", async () => {
    const { kube, calls } = fakeKube(undefined);
    const view = new MemberIndexView(kube, { ttlMs: 1_000, gatherMs: 10 });
    await view.change("gone", null);
    expect(calls).toEqual(['patch {"gone":null}']);
    await view.change("a", entry);
    expect(calls.slice(1)).toEqual([
      `patch {"a":${JSON.stringify(JSON.stringify(entry))}}`,
      `create {"a":${JSON.stringify(JSON.stringify(entry))}}`,
    ]);
  });
});
