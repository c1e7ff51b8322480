import { describe, expect, it } from "vitest";
import { sources } from "../../test/support/config-sources.js";
import { ConfigError, loadHandlerConfig } from "./load.js";

describe("loadHandlerConfig: the gateway and the preview hosts", () => {
  it("reads the gateway's settings", () => {
    const key = "k".repeat(40);
    const config = loadHandlerConfig(
      sources(
        {
          PUBLIC_URL: "https://fleet.example.com/",
          CORS_ORIGINS: "http://127.0.0.1:5173, https://app.example.com",
          PROXY_TIMEOUT: "90s",
          PROXY_MAX_BODY: "1Mi",
          GATEWAY_HOLD: "5s",
          INSTANCE_TOKEN_SECRET_FILE: "/keys",
        },
        { "/keys": `# newest first\n${key}\n` },
      ),
    );
    expect(config.gateway).toEqual({
      publicUrl: "https://fleet.example.com",
      corsOrigins: ["http://127.0.0.1:5173", "https://app.example.com"],
      proxyTimeoutMs: 90_000,
      proxyMaxBodyBytes: 1024 * 1024,
      holdMs: 5_000,
    });
    expect(config.instanceTokenKeys.kind).toBe("configured");
    if (config.instanceTokenKeys.kind === "configured") {
      expect(config.instanceTokenKeys.keys.current().current.secret).toBe(key);
    }
    // The key file reloads like the other credential files.
    expect(config.credentialFiles).toHaveLength(1);
  });

  it("has the gateway's defaults: no public URL, no CORS, 60s, 32Mi, keys in Kubernetes", () => {
    const config = loadHandlerConfig(sources({}));
    expect(config.gateway).toEqual({
      publicUrl: undefined,
      corsOrigins: [],
      proxyTimeoutMs: 60_000,
      proxyMaxBodyBytes: 32 * 1024 * 1024,
      holdMs: 30_000,
    });
    expect(config.instanceTokenKeys).toEqual({ kind: "kubernetes" });
  });

  it("bounds GATEWAY_HOLD and names it when invalid", () => {
    expect(loadHandlerConfig(sources({ GATEWAY_HOLD: "0" })).gateway.holdMs).toBe(0);
    expect(() => loadHandlerConfig(sources({ GATEWAY_HOLD: "soon" }))).toThrow(/^GATEWAY_HOLD: /);
    expect(() => loadHandlerConfig(sources({ GATEWAY_HOLD: "10m" }))).toThrow(/^GATEWAY_HOLD: /);
  });

  it("never repeats a token key in its error", () => {
    expect(() => loadHandlerConfig(sources({ INSTANCE_TOKEN_SECRET: "tiny-secret" }))).toThrow(
      /^INSTANCE_TOKEN_SECRET: (?!.*tiny-secret)/,
    );
  });

  it.each([
    [{ ADMIN_TOKEN_FILE: "/token" }, { "/token": " \n" }, "ADMIN_TOKEN_FILE: the file is empty"],
    [{ API_KEYS_FILE: "/keys" }, { "/keys": "key-one-123\nnot a key\n" }, "API_KEYS_FILE: line 2"],
  ])("%j with a bad file stops with one line naming the variable", (env, files, message) => {
    expect(() => loadHandlerConfig(sources(env, files))).toThrow(ConfigError);
    expect(() => loadHandlerConfig(sources(env, files))).toThrow(message);
  });

  it("turns previews on with PREVIEW_DOMAIN, sessions lasting 12h unless PREVIEW_SESSION_TTL says", () => {
    expect(loadHandlerConfig(sources({})).previews).toBeUndefined();
    expect(loadHandlerConfig(sources({ PREVIEW_DOMAIN: "preview.localhost" })).previews).toEqual({
      domain: "preview.localhost",
      sessionTtlMs: 12 * 3600_000,
    });
    const env = { PREVIEW_DOMAIN: "preview.example.com", PREVIEW_SESSION_TTL: "30m" };
    expect(loadHandlerConfig(sources(env)).previews?.sessionTtlMs).toBe(30 * 60_000);
    for (const [variable, value] of [
      ["PREVIEW_DOMAIN", "Preview.Example.com"],
      ["PREVIEW_DOMAIN", "preview.example.com:8000"],
      ["PREVIEW_DOMAIN", ".example.com"],
      ["PREVIEW_DOMAIN", "https://preview.example.com"],
      ["PREVIEW_SESSION_TTL", "soon"],
      ["PUBLIC_URL", "https://fleet.preview.example.com"],
    ] as const) {
      expect(() => loadHandlerConfig(sources({ ...env, [variable]: value }))).toThrow(
        new RegExp(`^${variable === "PUBLIC_URL" ? "PREVIEW_DOMAIN" : variable}: `),
      );
    }
  });
});
