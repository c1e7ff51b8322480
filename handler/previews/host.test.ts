import { describe, expect, it } from "vitest";
import { parsePreviewHost, previewHostname } from "./host.js";

const NAME = "gptme-client-1f0c9a7b3d2e4f60";
const DOMAIN = "preview.example.com";

describe("parsePreviewHost", () => {
  it("finds the port and the instance in a preview host, with or without a listening port", () => {
    const expected = { port: 5173, name: NAME, hostname: `5173-${NAME}.${DOMAIN}` };
    expect(parsePreviewHost(`5173-${NAME}.${DOMAIN}`, DOMAIN)).toEqual(expected);
    expect(parsePreviewHost(`5173-${NAME}.${DOMAIN}:8000`, DOMAIN)).toEqual(expected);
    expect(parsePreviewHost(`5173-${NAME.toUpperCase()}.PREVIEW.example.com.`, DOMAIN)).toEqual(
      expected,
    );
    expect(parsePreviewHost(`1024-${NAME}.${DOMAIN}`, DOMAIN)?.port).toBe(1024);
    expect(parsePreviewHost(`65535-${NAME}.${DOMAIN}`, DOMAIN)?.port).toBe(65535);
  });

  it("refuses ports out of range, other spellings, other domains and malformed hosts alike", () => {
    for (const host of [
      `1023-${NAME}.${DOMAIN}`,
      `65536-${NAME}.${DOMAIN}`,
      `99999-${NAME}.${DOMAIN}`,
      `0-${NAME}.${DOMAIN}`,
      `05173-${NAME}.${DOMAIN}`,
      `5173-${NAME}.other.example.com`,
      `5173-${NAME}.evil${DOMAIN}`,
      `5173-${NAME}x.${DOMAIN}`,
      `5173-gptme-client-1f0c9a7b3d2e4f6.${DOMAIN}`,
      `5173-other-1f0c9a7b3d2e4f60.${DOMAIN}`,
      `a.5173-${NAME}.${DOMAIN}`,
      `5173_${NAME}.${DOMAIN}`,
      `-${NAME}.${DOMAIN}`,
      DOMAIN,
      `.${DOMAIN}`,
      "",
      undefined,
    ]) {
      expect(parsePreviewHost(host, DOMAIN), String(host)).toBeUndefined();
    }
  });

  it("round-trips the host the fleet hands out", () => {
    expect(parsePreviewHost(previewHostname(8080, NAME, DOMAIN), DOMAIN)).toMatchObject({
      port: 8080,
      name: NAME,
    });
  });
});
