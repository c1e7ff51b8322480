import { describe, expect, it } from "vitest";
import { rewritePreviewHeaders, withOwnOrigin } from "./headers.js";

// What gptme-server 0.35.1 puts on HTML answers under /preview/<port>/.
const GPTME_SANDBOX =
  "sandbox allow-scripts allow-forms allow-modals allow-pointer-lock allow-popups allow-popups-to-escape-sandbox";

describe("rewritePreviewHeaders", () => {
  it("drops every cookie the pod sets or clears", () => {
    const headers = {
      "set-cookie": ["a=1; Path=/"],
      "set-cookie2": "b=2",
      "clear-site-data": '"cookies"',
      "content-type": "text/plain",
    };
    rewritePreviewHeaders(headers);
    expect(headers).toEqual({ "content-type": "text/plain" });
  });

  it("keeps gptme-server's sandbox but for the document's own origin", () => {
    const headers = { "content-security-policy": GPTME_SANDBOX };
    rewritePreviewHeaders(headers);
    expect(headers["content-security-policy"]).toBe(`${GPTME_SANDBOX} allow-same-origin`);
  });
});

describe("withOwnOrigin", () => {
  it("touches the sandbox directive alone, once", () => {
    expect(withOwnOrigin("default-src 'self'; sandbox allow-scripts")).toBe(
      "default-src 'self'; sandbox allow-scripts allow-same-origin",
    );
    expect(withOwnOrigin("sandbox")).toBe("sandbox allow-same-origin");
    expect(withOwnOrigin("sandbox allow-same-origin")).toBe("sandbox allow-same-origin");
    expect(withOwnOrigin("default-src 'self'")).toBe("default-src 'self'");
  });
});
