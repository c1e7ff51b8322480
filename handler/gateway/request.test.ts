import { describe, expect, it } from "vitest";
import {
  isEventStreamPath,
  parseGatewayUrl,
  rewriteCookiePath,
  rewriteLocation,
} from "./request.js";

const NAME = "gptme-client-0123456789abcdef";
const PREFIX = `/api/v1/instances/${NAME}`;

describe("parseGatewayUrl", () => {
  it("strips the prefix and keeps the query", () => {
    expect(parseGatewayUrl(`${PREFIX}/api/v2/conversations?limit=5&x=%20y`)).toEqual({
      name: NAME,
      prefix: PREFIX,
      upstreamPath: "/api/v2/conversations?limit=5&x=%20y",
      queryToken: undefined,
    });
  });

  it("maps the bare prefix and a trailing slash to the root", () => {
    expect(parseGatewayUrl(PREFIX)?.upstreamPath).toBe("/");
    expect(parseGatewayUrl(`${PREFIX}/`)?.upstreamPath).toBe("/");
    expect(parseGatewayUrl(`${PREFIX}?a=1`)?.upstreamPath).toBe("/?a=1");
  });

  it("takes every token parameter out of the forwarded query", () => {
    const parsed = parseGatewayUrl(
      `${PREFIX}/api/v2/conversations/c1/events?session_id=s1&token=abc%2Bdef&token=second&z=1`,
    );
    expect(parsed?.queryToken).toBe("abc+def");
    expect(parsed?.upstreamPath).toBe("/api/v2/conversations/c1/events?session_id=s1&z=1");
    expect(parseGatewayUrl(`${PREFIX}/x?%74oken=hidden`)?.upstreamPath).toBe("/x");
  });

  it("refuses anything that is not an instance name", () => {
    for (const url of [
      "/api/v1/instances/",
      "/api/v1/instances/gptme-client-0123",
      "/api/v1/instances/gptme-client-0123456789ABCDEF/x",
      "/api/v1/instances/other/x",
      `/api/v1/instances/${NAME}%2F/x`,
      "/instances/default",
    ]) {
      expect(parseGatewayUrl(url), url).toBeUndefined();
    }
  });
});

describe("rewriteLocation", () => {
  const upstream = "http://127.42.0.1:5700";
  it("puts the instance's own redirects under its prefix", () => {
    expect(rewriteLocation(`${upstream}/api/v2/conversations/`, PREFIX, upstream)).toBe(
      `${PREFIX}/api/v2/conversations/`,
    );
    expect(rewriteLocation("/chat/?a=1", PREFIX, upstream)).toBe(`${PREFIX}/chat/?a=1`);
  });

  it("leaves other places and relative locations alone", () => {
    expect(rewriteLocation("https://gptme.org/docs", PREFIX, upstream)).toBe(
      "https://gptme.org/docs",
    );
    expect(rewriteLocation("//cdn.example/x", PREFIX, upstream)).toBe("//cdn.example/x");
    expect(rewriteLocation("next", PREFIX, upstream)).toBe("next");
  });

  it("maps what lives under an upstream prefix to the public one, and nothing else", () => {
    const preview = "/preview/5173";
    expect(rewriteLocation(`${upstream}/preview/5173/`, "", upstream, preview)).toBe("/");
    expect(rewriteLocation(`${upstream}/preview/5173`, "", upstream, preview)).toBe("/");
    expect(rewriteLocation("/preview/5173/login?next=/a", "", upstream, preview)).toBe(
      "/login?next=/a",
    );
    expect(rewriteLocation("/preview/51730/x", "", upstream, preview)).toBe("/preview/51730/x");
    expect(rewriteLocation("/api/v2/", "", upstream, preview)).toBe("/api/v2/");
    expect(rewriteLocation("https://gptme.org/", "", upstream, preview)).toBe("https://gptme.org/");
  });
});

describe("rewriteCookiePath", () => {
  it("confines a cookie to the instance's prefix", () => {
    expect(rewriteCookiePath("gptme_auth=abc; Path=/api/; HttpOnly", PREFIX)).toBe(
      `gptme_auth=abc; Path=${PREFIX}/api/; HttpOnly`,
    );
    expect(rewriteCookiePath("a=b", PREFIX)).toBe(`a=b; Path=${PREFIX}/`);
    expect(rewriteCookiePath("a=b; path=", PREFIX)).toBe(`a=b; Path=${PREFIX}/`);
  });
});

describe("isEventStreamPath", () => {
  it("is a conversation's event stream, and nothing else", () => {
    expect(isEventStreamPath("/api/v2/conversations/2026-01-01-chat/events")).toBe(true);
    expect(isEventStreamPath("/api/v2/conversations/chat_1.x/events?session_id=a")).toBe(true);
    for (const path of [
      "/api/v2/conversations/chat",
      "/api/v2/conversations/chat/step",
      "/api/v2/conversations/chat/events/more",
      "/api/v2/conversations/../events",
      "/api/v2/conversations/./events",
      "/api/v2/conversations/a%2F..%2Fb/events",
      "/api/v2/conversations//events",
      "/api/v2/conversations",
      "/preview/5173/api/v2/conversations/chat/events",
    ]) {
      expect(isEventStreamPath(path), path).toBe(false);
    }
  });
});
