import { describe, expect, it } from "vitest";
import { expiryOf } from "./expiry.js";

const defaults = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 };
const t0 = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(t0.getTime() + ms);

describe("expiryOf", () => {
  it("measures idleness from creation when never touched", () => {
    const e = expiryOf({ createdAt: t0, lastActivity: undefined }, defaults);
    expect(e.idleAt).toEqual(at(30 * 60_000));
    expect(e.expiresAt).toEqual(e.idleAt);
    expect(e.reason).toBe("idle");
  });

  it("measures idleness from the last activity", () => {
    const e = expiryOf({ createdAt: t0, lastActivity: at(3600_000) }, defaults);
    expect(e.idleAt).toEqual(at(3600_000 + 30 * 60_000));
  });

  it("caps at the maximum lifetime however active", () => {
    const e = expiryOf({ createdAt: t0, lastActivity: at(23.9 * 3600_000) }, defaults);
    expect(e.lifetimeEndsAt).toEqual(at(24 * 3600_000));
    expect(e.expiresAt).toEqual(e.lifetimeEndsAt);
    expect(e.reason).toBe("max-lifetime");
  });

  it("lets per-instance overrides win", () => {
    const e = expiryOf(
      { createdAt: t0, lastActivity: undefined, idleTimeoutSeconds: 60, maxLifetimeSeconds: 30 },
      defaults,
    );
    expect(e.idleAt).toEqual(at(60_000));
    expect(e.lifetimeEndsAt).toEqual(at(30_000));
    expect(e.expiresAt).toEqual(at(30_000));
    expect(e.reason).toBe("max-lifetime");
  });

  it("names the lifetime on a tie: the reaper applies it first, and no activity moves it", () => {
    const e = expiryOf(
      { createdAt: t0, lastActivity: at(23.5 * 3600_000), maxLifetimeSeconds: 24 * 3600 },
      defaults,
    );
    expect(e.idleAt).toEqual(e.lifetimeEndsAt);
    expect(e.reason).toBe("max-lifetime");
  });
});
