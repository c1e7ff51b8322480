import { describe, expect, it } from "vitest";
import {
  instanceTokenOf,
  type TokenKey,
  tokenKeyIdOf,
} from "../../shared/tokens/instance-token.js";
import { isSseTokenShaped, isValidSseToken, sseTokenOf } from "./sse-token.js";

const secret = "k".repeat(40);
const key: TokenKey = { id: tokenKeyIdOf(secret), secret };
const other: TokenKey = { id: tokenKeyIdOf("o".repeat(40)), secret: "o".repeat(40) };
const issued = new Date("2026-01-01T12:00:00Z");
const HOUR = 3600_000;
const at = (ms: number) => new Date(issued.getTime() + ms);

describe("event-stream tokens", () => {
  const token = sseTokenOf(key, "uid-1", issued);

  it("are valid for their instance until the TTL has passed", () => {
    expect(token).toMatch(/^sse1\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(isValidSseToken(token, key, "uid-1", issued, HOUR)).toBe(true);
    expect(isValidSseToken(token, key, "uid-1", at(HOUR - 1000), HOUR)).toBe(true);
    expect(isValidSseToken(token, key, "uid-1", at(HOUR), HOUR)).toBe(false);
  });

  it("die with the instance: a recreated one (new uid) or another key refuses them", () => {
    expect(isValidSseToken(token, key, "uid-2", issued, HOUR)).toBe(false);
    expect(isValidSseToken(token, other, "uid-1", issued, HOUR)).toBe(false);
  });

  it("cannot be moved in time or forged", () => {
    const [, seconds, mac] = token.split(".");
    const later = `sse1.${Number(seconds) + 3600}.${mac}`;
    expect(isValidSseToken(later, key, "uid-1", at(HOUR + 1000), HOUR)).toBe(false);
    expect(isValidSseToken(`sse1.${seconds}.${"A".repeat(43)}`, key, "uid-1", issued, HOUR)).toBe(
      false,
    );
    // Issued in the future beyond clock skew.
    const future = sseTokenOf(key, "uid-1", at(HOUR));
    expect(isValidSseToken(future, key, "uid-1", issued, 2 * HOUR)).toBe(false);
  });

  it("never look like, or equal, the instance token", () => {
    const instanceToken = instanceTokenOf(key, "uid-1");
    expect(isSseTokenShaped(token)).toBe(true);
    expect(isSseTokenShaped(instanceToken)).toBe(false);
    expect(isValidSseToken(instanceToken, key, "uid-1", issued, HOUR)).toBe(false);
    expect(token).not.toContain(instanceToken);
  });
});
