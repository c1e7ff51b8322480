import { describe, expect, it } from "vitest";
import { sources } from "../../test/support/config-sources.js";
import { ConfigError, loadFleetConfig, loadHandlerConfig } from "./load.js";

describe("loadHandlerConfig", () => {
  it("has the contract's defaults", () => {
    const config = loadHandlerConfig(sources({}));
    expect(config).toMatchObject({
      namespace: "default",
      podTemplate: "gptme-client",
      logLevel: "info",
      httpPort: 8080,
      adminToken: undefined,
      apiKeys: undefined,
      clientIdSecret: undefined,
      idleTimeoutMs: 30 * 60_000,
      maxLifetimeMs: 24 * 3600_000,
      maxInstancesPerClient: 5,
      maxInstances: 200,
      readyWaitMs: 20_000,
      activityIntervalMs: 60_000,
      defaultCpuLimit: "1",
      defaultMemoryLimit: "1Gi",
      credentialFiles: [],
      workspaces: { size: "1Gi", storageClass: undefined },
      workspaceRetentionMs: 30 * 24 * 3600_000,
    });
  });

  it("reads the workspaces' settings, and WORKSPACES=off turns them off", () => {
    const env = { WORKSPACE_SIZE: "5Gi", WORKSPACE_STORAGE_CLASS: "fast-ssd" };
    expect(loadHandlerConfig(sources(env)).workspaces).toEqual({
      size: "5Gi",
      storageClass: "fast-ssd",
    });
    expect(loadHandlerConfig(sources({ ...env, WORKSPACES: "off" })).workspaces).toBeUndefined();
    expect(loadHandlerConfig(sources({ WORKSPACE_RETENTION: "7d" })).workspaceRetentionMs).toBe(
      7 * 24 * 3600_000,
    );
  });

  it("re-reads credentials files within 10 s of a change by default", () => {
    const config = loadHandlerConfig(
      sources({ API_KEYS_FILE: "/keys" }, { "/keys": "key-one-123\n" }),
    );
    expect(config.credentialFiles.map((f) => f.withinMs)).toEqual([10_000]);
  });

  it("takes ADMIN_TOKEN as it is, with no file to re-read", () => {
    const config = loadHandlerConfig(sources({ ADMIN_TOKEN: "env-admin-token" }));
    expect(config.adminToken?.current()).toBe("env-admin-token");
    expect(config.credentialFiles).toEqual([]);
  });

  it("starts with the admin API off while ADMIN_TOKEN_FILE's file does not exist (an optional Secret)", async () => {
    const config = loadHandlerConfig(sources({ ADMIN_TOKEN_FILE: "/run/admin/ADMIN_TOKEN" }));
    expect(config.adminToken?.current()).toBe("");
    expect(config.credentialFiles).toHaveLength(1);
    // A file that is there must still hold a token.
    expect(() => loadHandlerConfig(sources({ ADMIN_TOKEN_FILE: "/t" }, { "/t": "\n" }))).toThrow(
      "ADMIN_TOKEN_FILE: the file is empty",
    );
    expect(() =>
      loadHandlerConfig({
        env: { CLIENT_AUTH: "open", ADMIN_TOKEN_FILE: "/t" },
        readFile: () => {
          throw Object.assign(new Error("denied"), { code: "EACCES" });
        },
      }),
    ).toThrow("ADMIN_TOKEN_FILE: cannot read /t (EACCES)");
  });

  it("takes the namespace from the service account when NAMESPACE is unset", () => {
    const config = loadHandlerConfig(
      sources({}, { "/var/run/secrets/kubernetes.io/serviceaccount/namespace": "gptme-fleet\n" }),
    );
    expect(config.namespace).toBe("gptme-fleet");
    expect(loadHandlerConfig(sources({ NAMESPACE: "mine" })).namespace).toBe("mine");
  });

  it("reads every variable", () => {
    const config = loadHandlerConfig(
      sources(
        {
          POD_TEMPLATE: "tpl",
          LOG_LEVEL: "debug",
          HTTP_PORT: "9000",
          ADMIN_TOKEN_FILE: "/token",
          API_KEYS_FILE: "/keys",
          CLIENT_ID_SECRET: "pepper",
          IDLE_TIMEOUT: "1h30m",
          MAX_LIFETIME: "2h",
          MAX_INSTANCES_PER_CLIENT: "2",
          MAX_INSTANCES: "10",
          READY_WAIT: "5",
          ACTIVITY_INTERVAL: "15s",
          DEFAULT_CPU_LIMIT: "500m",
          DEFAULT_MEMORY_LIMIT: "256Mi",
          CREDENTIALS_RELOAD: "30s",
        },
        { "/token": "  admin-secret\n", "/keys": "key-one-123\n" },
      ),
    );
    expect(config).toMatchObject({
      podTemplate: "tpl",
      logLevel: "debug",
      httpPort: 9000,
      clientIdSecret: "pepper",
      idleTimeoutMs: 90 * 60_000,
      maxLifetimeMs: 2 * 3600_000,
      maxInstancesPerClient: 2,
      maxInstances: 10,
      readyWaitMs: 5_000,
      activityIntervalMs: 15_000,
      defaultCpuLimit: "500m",
      defaultMemoryLimit: "256Mi",
    });
    expect(config.adminToken?.current()).toBe("admin-secret");
    expect(config.apiKeys?.current().allows("key-one-123")).toBe(true);
    expect(config.apiKeys?.current().allows("key-two-123")).toBe(false);
    expect(config.credentialFiles.map((f) => f.variable).sort()).toEqual([
      "ADMIN_TOKEN_FILE",
      "API_KEYS_FILE",
    ]);
    expect(config.credentialFiles.map((f) => f.withinMs)).toEqual([30_000, 30_000]);
  });

  it.each([
    [{ HTTP_PORT: "http" }, "HTTP_PORT"],
    [{ HTTP_PORT: "70000" }, "HTTP_PORT"],
    [{ IDLE_TIMEOUT: "soon" }, "IDLE_TIMEOUT"],
    [{ MAX_LIFETIME: "-1h" }, "MAX_LIFETIME"],
    [{ READY_WAIT: "61s" }, "READY_WAIT"],
    [{ ACTIVITY_INTERVAL: "1 minute" }, "ACTIVITY_INTERVAL"],
    [{ MAX_INSTANCES: "0" }, "MAX_INSTANCES"],
    [{ MAX_INSTANCES_PER_CLIENT: "many" }, "MAX_INSTANCES_PER_CLIENT"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ NAMESPACE: "Not_A_Namespace" }, "NAMESPACE"],
    [{ DEFAULT_CPU_LIMIT: "lots" }, "DEFAULT_CPU_LIMIT"],
    [{ DEFAULT_MEMORY_LIMIT: "1 GB" }, "DEFAULT_MEMORY_LIMIT"],
    [{ API_KEYS_FILE: "/missing" }, "API_KEYS_FILE"],
    [{ ADMIN_TOKEN: "a", ADMIN_TOKEN_FILE: "/t" }, "ADMIN_TOKEN_FILE"],
    [{ PUBLIC_URL: "fleet.example.com" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "ftp://fleet.example.com" }, "PUBLIC_URL"],
    [{ CORS_ORIGINS: "*" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "https://ui.example.com/app" }, "CORS_ORIGINS"],
    [{ PROXY_TIMEOUT: "forever" }, "PROXY_TIMEOUT"],
    [{ PROXY_MAX_BODY: "32MB" }, "PROXY_MAX_BODY"],
    [{ PROXY_MAX_BODY: "0" }, "PROXY_MAX_BODY"],
    [{ INSTANCE_TOKEN_SECRET: "too-short" }, "INSTANCE_TOKEN_SECRET"],
    [{ INSTANCE_TOKEN_SECRET_FILE: "/missing" }, "INSTANCE_TOKEN_SECRET_FILE"],
    [
      { INSTANCE_TOKEN_SECRET: "k".repeat(40), INSTANCE_TOKEN_SECRET_FILE: "/k" },
      "INSTANCE_TOKEN_SECRET_FILE",
    ],
    [{ CREDENTIALS_RELOAD: "0" }, "CREDENTIALS_RELOAD"],
    [{ WORKSPACES: "yes" }, "WORKSPACES"],
    [{ WORKSPACE_SIZE: "lots" }, "WORKSPACE_SIZE"],
    [{ WORKSPACE_STORAGE_CLASS: "Fast SSD" }, "WORKSPACE_STORAGE_CLASS"],
    [{ WORKSPACE_RETENTION: "a month" }, "WORKSPACE_RETENTION"],
    [{ CREDENTIALS_RELOAD: "often" }, "CREDENTIALS_RELOAD"],
    [{ CLIENT_AUTH: "password" }, "CLIENT_AUTH"],
    [{ CLIENT_AUTH: "keys" }, "API_KEYS_FILE"],
    [{ CLIENT_AUTH: "jwt", JWT_JWKS_URL: "https://idp.example.com/jwks" }, "JWT_ISSUER"],
    [{ CLIENT_AUTH: "jwt", JWT_ISSUER: "https://idp.example.com" }, "JWT_JWKS_URL"],
    [{ CLIENT_AUTH: "open", JWT_JWKS_URL: "idp.example.com/jwks" }, "JWT_JWKS_URL"],
    [{ JWT_JWKS_REFRESH: "sometimes" }, "JWT_JWKS_REFRESH"],
    [{ JWT_PLAN_CLAIM: "app_metadata.plan" }, "JWT_PLAN_CLAIM"],
    [
      {
        CLIENT_AUTH: "jwt",
        JWT_ISSUER: "i",
        JWT_JWKS_URL: "http://127.0.0.1:1/jwks",
        JWT_PLAN_CLAIM: "app_metadata..plan",
      },
      "JWT_PLAN_CLAIM",
    ],
    [{ PLANS_FILE: "/missing.yaml" }, "PLANS_FILE"],
    [{ LOGIN_CODE_TTL: "0" }, "LOGIN_CODE_TTL"],
    [{ SSE_TOKEN_TTL: "a while" }, "SSE_TOKEN_TTL"],
    [{ WEBUI_URL: "chat.example.com" }, "WEBUI_URL"],
    [{ CORS_ORIGINS: "tauri://localhost/index.html" }, "CORS_ORIGINS"],
  ])("%j stops with one line naming %s", (env, variable) => {
    expect(() => loadHandlerConfig(sources(env))).toThrow(ConfigError);
    try {
      loadHandlerConfig(sources(env));
    } catch (error) {
      const message = (error as Error).message;
      expect(message.startsWith(`${variable}: `)).toBe(true);
      expect(message).not.toContain("\n");
    }
  });

  it("is closed by default: without API_KEYS_FILE it says what to set", () => {
    expect(() => loadHandlerConfig({ ...sources({}), env: {} })).toThrow(
      /^API_KEYS_FILE: required with CLIENT_AUTH=keys \(the default\): set API_KEYS_FILE, or CLIENT_AUTH=jwt .*, or CLIENT_AUTH=open/,
    );
    const keys = loadHandlerConfig({
      ...sources({}, { "/keys": "key-0123456789\n" }),
      env: { API_KEYS_FILE: "/keys" },
    });
    expect(keys.clientAuth).toEqual({ keys: true, jwt: undefined });
    expect(keys.apiKeys?.current().allows("key-0123456789")).toBe(true);
    expect(loadHandlerConfig(sources({})).clientAuth).toEqual({ keys: true, jwt: undefined });
  });

  it("never repeats a secret value in its error", () => {
    expect(() => loadHandlerConfig(sources({ HTTP_PORT: "supersecretvalue" }))).toThrow(
      /^HTTP_PORT: (?!.*supersecretvalue)/,
    );
  });
});

describe("loadFleetConfig", () => {
  it("ignores the handler's variables", () => {
    expect(
      loadFleetConfig(sources({ HTTP_PORT: "nonsense", IDLE_TIMEOUT: "5m" })).idleTimeoutMs,
    ).toBe(300_000);
  });
});
