import { describe, expect, it } from "vitest";
import {
  API_KEY_PATTERN,
  clientIdOf,
  INSTANCE_ID_PATTERN,
  instanceNameOf,
  sha256Hex,
} from "./names.js";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

describe("clientIdOf", () => {
  it("is a lowercase hex prefix of SHA-256 of the key without a secret", () => {
    const id = clientIdOf("key-0123456789");
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(sha256Hex("key-0123456789").startsWith(id)).toBe(true);
  });

  it("is keyed by the secret when one is set", () => {
    const plain = clientIdOf("key-0123456789");
    const keyed = clientIdOf("key-0123456789", "secret-a");
    expect(keyed).toMatch(/^[0-9a-f]{32}$/);
    expect(keyed).not.toBe(plain);
    expect(clientIdOf("key-0123456789", "secret-b")).not.toBe(keyed);
    expect(clientIdOf("key-0123456789", "secret-a")).toBe(keyed);
  });

  it("never contains the key", () => {
    const key = "abcdef0123456789";
    expect(clientIdOf(key)).not.toContain(key);
  });
});

describe("instanceNameOf", () => {
  it("is a deterministic DNS label with 64 bits of hash", () => {
    const name = instanceNameOf(clientIdOf("key-0123456789"), "default");
    expect(name).toMatch(/^gptme-client-[0-9a-f]{16}$/);
    expect(name).toMatch(DNS_LABEL);
    expect(instanceNameOf(clientIdOf("key-0123456789"), "default")).toBe(name);
  });

  it("differs by client and by instance", () => {
    const a = clientIdOf("key-aaaaaaaa");
    const b = clientIdOf("key-bbbbbbbb");
    const names = new Set([
      instanceNameOf(a, "x"),
      instanceNameOf(a, "y"),
      instanceNameOf(b, "x"),
      instanceNameOf(b, "y"),
    ]);
    expect(names.size).toBe(4);
  });

  it("stays a DNS label for the longest instance id", () => {
    expect(instanceNameOf("0".repeat(32), "a".repeat(40))).toMatch(DNS_LABEL);
  });
});

describe("input patterns", () => {
  it.each(["a", "default", "my-instance-1", "a".repeat(40), "0"])(
    "accepts instance id %j",
    (id) => {
      expect(INSTANCE_ID_PATTERN.test(id)).toBe(true);
    },
  );

  it.each(["", "-a", "a-", "A", "a_b", "a.b", "a".repeat(41), "a b", "ü"])(
    "rejects instance id %j",
    (id) => {
      expect(INSTANCE_ID_PATTERN.test(id)).toBe(false);
    },
  );

  it.each(["abcdefgh", "A.b_c~d+e/f=g-h", "x".repeat(256)])("accepts API key %j", (key) => {
    expect(API_KEY_PATTERN.test(key)).toBe(true);
  });

  it.each(["short", "x".repeat(257), "has space", "semi;colon", "new\nline", "ünïcode1"])(
    "rejects API key %j",
    (key) => {
      expect(API_KEY_PATTERN.test(key)).toBe(false);
    },
  );
});
