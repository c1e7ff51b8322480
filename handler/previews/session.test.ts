import { describe, expect, it } from "vitest";
import { parseTokenKeys } from "../../shared/tokens/instance-token.js";
import {
  cookiesOf,
  isValidSession,
  SESSION_COOKIE,
  sessionSetCookie,
  signSession,
  withoutSessionCookie,
} from "./session.js";

const OLD = "o".repeat(40);
const NEW = "n".repeat(40);
const keys = parseTokenKeys(`${OLD}\n`);
const subject = {
  hostname: "5173-gptme-client-1f0c9a7b3d2e4f60.preview.localhost",
  uid: "u-1",
  port: 5173,
};
const now = new Date("2026-01-01T00:00:00Z");
const later = new Date(now.getTime() + 3600_000);

describe("preview sessions", () => {
  it("hold for their subject until they expire", () => {
    const value = signSession(keys, subject, later);
    expect(isValidSession(value, keys, subject, now)).toBe(true);
    expect(isValidSession(value, keys, subject, new Date(later.getTime() - 1000))).toBe(true);
    expect(isValidSession(value, keys, subject, later)).toBe(false);
  });

  it("do not hold for another host, port or instance uid", () => {
    const value = signSession(keys, subject, later);
    expect(
      isValidSession(value, keys, { ...subject, hostname: "5174-x.preview.localhost" }, now),
    ).toBe(false);
    expect(isValidSession(value, keys, { ...subject, port: 5174 }, now)).toBe(false);
    expect(isValidSession(value, keys, { ...subject, uid: "u-2" }, now)).toBe(false);
  });

  it("cannot be stretched or forged, and survive a key rotation until the old key goes", () => {
    const value = signSession(keys, subject, later);
    const [seconds, id, mac] = value.split(".");
    const stretched = `${Number(seconds) + 3600}.${id}.${mac}`;
    expect(isValidSession(stretched, keys, subject, now)).toBe(false);
    expect(isValidSession(`${seconds}.${id}.${"A".repeat(43)}`, keys, subject, now)).toBe(false);
    for (const bad of [undefined, "", "x", `${value}.`, value.replace(".", ".."), ` ${value}`]) {
      expect(isValidSession(bad, keys, subject, now)).toBe(false);
    }
    const rotated = parseTokenKeys(`${NEW}\n${OLD}\n`);
    expect(isValidSession(value, rotated, subject, now)).toBe(true);
    expect(isValidSession(value, parseTokenKeys(`${NEW}\n`), subject, now)).toBe(false);
  });

  it("is set for exactly the host, HttpOnly and SameSite=Lax, Secure on https", () => {
    expect(sessionSetCookie("v", 3600_000, false)).toBe(
      `${SESSION_COOKIE}=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax`,
    );
    expect(sessionSetCookie("v", 3600_000, true)).toMatch(/; Secure$/);
    expect(sessionSetCookie("v", 3600_000, true)).not.toMatch(/domain/i);
  });

  it("is read from the Cookie header and never passed on", () => {
    const header = `a=1; ${SESSION_COOKIE}=s.e.cret; b=2`;
    expect(cookiesOf(header, SESSION_COOKIE)).toEqual(["s.e.cret"]);
    expect(cookiesOf(`${header}; ${SESSION_COOKIE}=two`, SESSION_COOKIE)).toEqual([
      "s.e.cret",
      "two",
    ]);
    expect(cookiesOf("a=1", SESSION_COOKIE)).toEqual([]);
    expect(withoutSessionCookie(header)).toBe("a=1; b=2");
    expect(withoutSessionCookie(`${SESSION_COOKIE}=x`)).toBeUndefined();
    expect(withoutSessionCookie(undefined)).toBeUndefined();
  });
});
