import { describe, expect, it } from "vitest";
import {
  instanceTokenOf,
  newTokenKey,
  parseTokenKeys,
  tokenKeyIdOf,
  tokensMatch,
} from "./instance-token.js";

const K1 = "k1-0123456789abcdef0123456789abcdef";
const K2 = "k2-0123456789abcdef0123456789abcdef";

describe("instance tokens", () => {
  it("are 256-bit base64url strings, the same for the same key and uid on any replica", () => {
    const { current } = parseTokenKeys(K1);
    const token = instanceTokenOf(current, "uid-1");
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, "base64url")).toHaveLength(32);
    expect(instanceTokenOf(parseTokenKeys(K1).current, "uid-1")).toBe(token);
  });

  it("differ for another uid (a recreated instance) and for another key", () => {
    const keys = parseTokenKeys(`${K1}\n${K2}`);
    const token = instanceTokenOf(keys.current, "uid-1");
    expect(instanceTokenOf(keys.current, "uid-2")).not.toBe(token);
    expect(instanceTokenOf(parseTokenKeys(K2).current, "uid-1")).not.toBe(token);
  });

  it("reads keys newest first, skipping blanks and comments, and keeps the older ones by id", () => {
    const keys = parseTokenKeys(`# rotated 2026-11\n\n${K2}\n${K1}\n`);
    expect(keys.current.secret).toBe(K2);
    expect([...keys.byId.keys()]).toEqual([tokenKeyIdOf(K2), tokenKeyIdOf(K1)]);
    expect(keys.current.id).toMatch(/^[0-9a-f]{12}$/);
    expect(keys.current.id).not.toContain(K2.slice(0, 6));
  });

  it("refuses short keys and empty key sets without echoing the key", () => {
    expect(() => parseTokenKeys("short-secret")).toThrow(/key 1 is shorter than 32/);
    expect(() => parseTokenKeys("short-secret")).not.toThrow(/short-secret/);
    expect(() => parseTokenKeys("# nothing\n\n")).toThrow(/no key/);
  });

  it("compares tokens whatever their lengths", () => {
    expect(tokensMatch("abc", "abc")).toBe(true);
    expect(tokensMatch("abc", "abd")).toBe(false);
    expect(tokensMatch("", "abc")).toBe(false);
    expect(tokensMatch("abc".repeat(100), "abc")).toBe(false);
  });

  it("makes new keys long enough to parse", () => {
    const key = newTokenKey();
    expect(parseTokenKeys(key).current.secret).toBe(key);
    expect(newTokenKey()).not.toBe(key);
  });
});
