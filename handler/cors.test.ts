import { describe, expect, it } from "vitest";
import { corsHeaders, isPreflight, preflightHeaders } from "./cors.js";

const UI = "http://127.0.0.1:5173";

describe("CORS", () => {
  it("echoes an allowed origin exactly, with credentials, never *", () => {
    expect(corsHeaders(UI, [UI, "https://app.example.com"])).toEqual({
      vary: "Origin",
      "access-control-allow-origin": UI,
      "access-control-allow-credentials": "true",
    });
  });

  it("gives a foreign or missing origin nothing but Vary", () => {
    expect(corsHeaders("https://evil.example", [UI])).toEqual({ vary: "Origin" });
    expect(corsHeaders(undefined, [UI])).toEqual({ vary: "Origin" });
  });

  it("adds nothing at all when no origin is configured", () => {
    expect(corsHeaders(UI, [])).toEqual({});
    expect(preflightHeaders(UI, [])).toEqual({});
  });

  it("answers preflights with the methods and headers gptme's web UI sends", () => {
    const headers = preflightHeaders(UI, [UI]);
    expect(headers["access-control-allow-origin"]).toBe(UI);
    expect(headers["access-control-allow-headers"]).toContain("authorization");
    expect(headers["access-control-allow-headers"]).toContain("content-type");
    expect(headers["access-control-allow-methods"]).toContain("DELETE");
    expect(preflightHeaders("https://evil.example", [UI])).toEqual({ vary: "Origin" });
  });

  it("tells a preflight from a plain OPTIONS request", () => {
    const preflight = { origin: UI, "access-control-request-method": "POST" };
    expect(isPreflight("OPTIONS", preflight)).toBe(true);
    expect(isPreflight("OPTIONS", new Headers(preflight))).toBe(true);
    expect(isPreflight("OPTIONS", { origin: UI })).toBe(false);
    expect(isPreflight("GET", preflight)).toBe(false);
  });
});
