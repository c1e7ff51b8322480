import { describe, expect, it } from "vitest";
import { sources } from "../../test/support/config-sources.js";
import { loadHandlerConfig } from "./load.js";

describe("loadHandlerConfig: platform JWTs and sign-in", () => {
  it("reads the platform JWT settings, with an HS256 secret file that reloads", () => {
    const config = loadHandlerConfig(
      sources(
        {
          CLIENT_AUTH: "keys,jwt",
          API_KEYS_FILE: "/keys",
          JWT_JWKS_URL: "https://project.supabase.co/auth/v1/.well-known/jwks.json",
          JWT_ISSUER: "https://project.supabase.co/auth/v1",
          JWT_SECRET_FILE: "/jwt-secret",
        },
        { "/keys": "key-0123456789\n", "/jwt-secret": "s".repeat(32) },
      ),
    );
    expect(config.clientAuth).toMatchObject({
      keys: true,
      jwt: {
        jwksUrl: "https://project.supabase.co/auth/v1/.well-known/jwks.json",
        issuer: "https://project.supabase.co/auth/v1",
        audience: "authenticated",
        refreshMs: 5 * 60_000,
        planClaim: undefined,
      },
    });
    expect(config.clientAuth.jwt?.secret?.current()).toBe("s".repeat(32));
    expect(config.credentialFiles.map((f) => f.variable)).toContain("JWT_SECRET_FILE");
    const jwtOnly = loadHandlerConfig(
      sources({ CLIENT_AUTH: "jwt", JWT_JWKS_URL: "http://127.0.0.1:1/jwks", JWT_ISSUER: "i" }),
    );
    expect(jwtOnly.clientAuth.keys).toBe(false);
    const planned = loadHandlerConfig(
      sources({
        CLIENT_AUTH: "jwt",
        JWT_JWKS_URL: "http://127.0.0.1:1/jwks",
        JWT_ISSUER: "i",
        JWT_PLAN_CLAIM: "app_metadata.plan",
      }),
    );
    expect(planned.clientAuth.jwt?.planClaim).toEqual(["app_metadata", "plan"]);
  });

  it("reads the sign-in settings, and accepts the desktop app's origins", () => {
    const config = loadHandlerConfig(
      sources({
        LOGIN_CODE_TTL: "2m",
        SSE_TOKEN_TTL: "15m",
        WEBUI_URL: "http://127.0.0.1:5701/",
        CORS_ORIGINS: "tauri://localhost,http://tauri.localhost,https://tauri.localhost",
      }),
    );
    expect(config.signin).toEqual({
      loginCodeTtlMs: 120_000,
      sseTokenTtlMs: 15 * 60_000,
      webUiUrl: "http://127.0.0.1:5701/",
    });
    expect(config.gateway.corsOrigins).toEqual([
      "tauri://localhost",
      "http://tauri.localhost",
      "https://tauri.localhost",
    ]);
    expect(loadHandlerConfig(sources({})).signin).toEqual({
      loginCodeTtlMs: 60_000,
      sseTokenTtlMs: 3600_000,
      webUiUrl: undefined,
    });
  });
});
