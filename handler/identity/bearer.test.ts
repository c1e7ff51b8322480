import { describe, expect, it } from "vitest";
import { bearerOf } from "./bearer.js";

describe("bearerOf", () => {
  it("reads the token whatever the scheme's case", () => {
    expect(bearerOf("Bearer t0k")).toBe("t0k");
    expect(bearerOf("bearer   t0k ")).toBe("t0k");
    expect(bearerOf("Basic dXNlcg==")).toBeUndefined();
    expect(bearerOf("Bearer a b")).toBeUndefined();
    expect(bearerOf(undefined)).toBeUndefined();
  });
});
