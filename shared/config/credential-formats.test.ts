import { describe, expect, it } from "vitest";
import { sha256Hex } from "../instance/names.js";
import { parseApiKeys } from "./credential-formats.js";

describe("parseApiKeys", () => {
  it("accepts plain keys and sha256 digests, skipping comments and blank lines", () => {
    const keys = parseApiKeys(
      `# comment\n\nplain-key-1234\nsha256:${sha256Hex("hashed-key-1234").toUpperCase()}\n`,
    );
    expect(keys.size).toBe(2);
    expect(keys.allows("plain-key-1234")).toBe(true);
    expect(keys.allows("hashed-key-1234")).toBe(true);
    expect(keys.allows("other-key-1234")).toBe(false);
  });

  it("reads the plan named after a key, hashed or plain", () => {
    const keys = parseApiKeys(
      `plain-key-1234 pro\nsha256:${sha256Hex("hashed-key-1234")}\tteam.gold\nfree-key-1234\n`,
    );
    expect(keys.size).toBe(3);
    expect(keys.planOf("plain-key-1234")).toBe("pro");
    expect(keys.planOf("hashed-key-1234")).toBe("team.gold");
    expect(keys.planOf("free-key-1234")).toBeUndefined();
    expect(keys.allows("free-key-1234")).toBe(true);
  });

  it("refuses a line with more than a key and a plan, or a plan that cannot be a name, never quoting it", () => {
    expect(() => parseApiKeys("good-key-1234 pro extra\n")).toThrow(
      /^API_KEYS_FILE: line 1 has more than a key and a plan$/,
    );
    expect(() => parseApiKeys("good-key-1234\ngood-key-5678 pro!\n")).toThrow(
      /^API_KEYS_FILE: line 2: what follows the key is not a plan's name$/,
    );
  });

  it("names the line, not its content, when a line is neither", () => {
    expect(() => parseApiKeys("good-key-1234\nbad key with spaces\n")).toThrow(
      "API_KEYS_FILE: line 2 is neither an API key nor sha256:<64 hex digits>",
    );
  });
});
