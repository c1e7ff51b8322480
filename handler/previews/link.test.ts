import { describe, expect, it } from "vitest";
import { CODE_PARAMETER, signInLink, takeCode } from "./link.js";

const NAME = "gptme-client-1f0c9a7b3d2e4f60";

describe("signInLink", () => {
  it("points at the preview host's root the way the fleet is reached", () => {
    expect(signInLink("c0de", 5173, NAME, "preview.example.com", "https://fleet.example.com")).toBe(
      `https://5173-${NAME}.preview.example.com/?${CODE_PARAMETER}=c0de`,
    );
    expect(signInLink("c0de", 5173, NAME, "preview.localhost", "http://127.0.0.1:8000")).toBe(
      `http://5173-${NAME}.preview.localhost:8000/?${CODE_PARAMETER}=c0de`,
    );
    expect(signInLink("c0de", 5173, NAME, "preview.localhost", undefined)).toBe(
      `http://5173-${NAME}.preview.localhost/?${CODE_PARAMETER}=c0de`,
    );
  });
});

describe("takeCode", () => {
  it("takes the code out and keeps the rest of the URL as sent", () => {
    expect(takeCode(`/?${CODE_PARAMETER}=abc`)).toEqual({ code: "abc", rest: "/" });
    expect(takeCode(`/app/x?a=1&${CODE_PARAMETER}=abc&b=%20`)).toEqual({
      code: "abc",
      rest: "/app/x?a=1&b=%20",
    });
    expect(takeCode(`/?${CODE_PARAMETER}=`)).toEqual({ code: "", rest: "/" });
  });

  it("finds nothing in URLs without one", () => {
    expect(takeCode("/a?b=1")).toEqual({ code: undefined, rest: "/a?b=1" });
    expect(takeCode("/a")).toEqual({ code: undefined, rest: "/a" });
    expect(takeCode(`/a?x${CODE_PARAMETER}=1`)).toEqual({
      code: undefined,
      rest: `/a?x${CODE_PARAMETER}=1`,
    });
  });
});
