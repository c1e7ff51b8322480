import { describe, expect, it } from "vitest";
import { parseDurationMs } from "./duration.js";

describe("parseDurationMs", () => {
  it.each([
    ["90", 90_000],
    ["90s", 90_000],
    ["15m", 900_000],
    ["2h", 7_200_000],
    ["1h30m", 5_400_000],
    ["0", 0],
    ["250ms", 250],
    [" 5m ", 300_000],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(["", "abc", "-5m", "5 minutes", "1.5.2h", "m", "5x", "1e3"])("rejects %j", (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
