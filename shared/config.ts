import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { ConfigError } from "./config-error.js";
import {
  byteSize,
  duration,
  originList,
  positiveInt,
  quantity,
  wholeNumber,
} from "./config-values.js";
import {
  type ApiKeyAllowlist,
  apiKeysFormat,
  MISSING_FILE,
  optionalSecretFormat,
  secretFormat,
  tokenKeysFormat,
} from "./credential-formats.js";
import type { TokenKeys } from "./instance-token.js";
import type { JwtSettings } from "./jwt-settings.js";
import { type Current, type FileFormat, fixed, ReloadingFile } from "./reloading-file.js";
import type { RevisionSettings } from "./revision.js";
import type { WorkspaceSettings } from "./workspace.js";

/** Where a pod finds its own namespace when it runs with a service account. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE =
  "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export { ConfigError } from "./config-error.js";
export { ApiKeyAllowlist, parseApiKeys } from "./credential-formats.js";

/** The I/O configuration loading needs, injectable so tests need no files. */
export interface ConfigSources {
  env: NodeJS.ProcessEnv;
  readFile: (path: string) => string;
}

export const defaultSources = (): ConfigSources => ({
  env: process.env,
  readFile: (path) => readFileSync(path, "utf8"),
});

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Dot-separated DNS labels; room is left for the `<port>-<instance name>.` in front. */
const DNS_DOMAIN =
  /^(?=.{1,200}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Settings both the handler and the reaper use. */
const fleetEnv = {
  NAMESPACE: z.string().regex(DNS_LABEL, "expected a namespace name").optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  IDLE_TIMEOUT: duration().prefault("30m"),
  MAX_LIFETIME: duration().prefault("24h"),
  WORKSPACE_RETENTION: duration({ min: 1_000 }).prefault("30d"),
  POOL_SIZE: wholeNumber.prefault("0"),
};

const handlerEnv = {
  ...fleetEnv,
  POD_TEMPLATE: z
    .string()
    .regex(DNS_SUBDOMAIN, "expected a PodTemplate name")
    .default("gptme-client"),
  HTTP_PORT: z
    .string()
    .regex(/^\d+$/, "expected a port number")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, "expected a port number between 1 and 65535")
    .prefault("8080"),
  ADMIN_TOKEN: z.string().optional(),
  ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  API_KEYS_FILE: z.string().min(1).optional(),
  CREDENTIALS_RELOAD: duration({ min: 1_000 }).prefault("10s"),
  CLIENT_ID_SECRET: z.string().optional(),
  MAX_INSTANCES_PER_CLIENT: positiveInt.prefault("5"),
  MAX_INSTANCES: positiveInt.prefault("200"),
  READY_WAIT: duration({ max: 60_000 }).prefault("20s"),
  ACTIVITY_INTERVAL: duration().prefault("60s"),
  DEFAULT_CPU_LIMIT: quantity.default("1"),
  DEFAULT_MEMORY_LIMIT: quantity.default("1Gi"),
  PUBLIC_URL: z
    .url({
      protocol: /^https?$/,
      error: "expected an http(s) URL such as https://fleet.example.com",
    })
    .optional(),
  CORS_ORIGINS: originList.optional(),
  PROXY_TIMEOUT: duration().prefault("60s"),
  PROXY_MAX_BODY: byteSize.prefault("32Mi"),
  GATEWAY_HOLD: duration({ max: 300_000 }).prefault("30s"),
  INSTANCE_TOKEN_SECRET: z.string().optional(),
  INSTANCE_TOKEN_SECRET_FILE: z.string().min(1).optional(),
  WORKSPACES: z.enum(["on", "off"], { error: "expected on or off" }).default("on"),
  WORKSPACE_SIZE: quantity.default("1Gi"),
  WORKSPACE_STORAGE_CLASS: z
    .string()
    .regex(DNS_SUBDOMAIN, "expected a StorageClass name")
    .optional(),
  LOGIN_CODE_TTL: duration({ min: 1_000, max: 3_600_000 }).prefault("60s"),
  SSE_TOKEN_TTL: duration({ min: 1_000 }).prefault("1h"),
  CLIENT_AUTH: z
    .enum(["keys", "jwt", "keys,jwt", "open"], { error: "expected keys, jwt, keys,jwt or open" })
    .default("keys"),
  JWT_JWKS_URL: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).default("authenticated"),
  JWT_JWKS_REFRESH: duration({ min: 1_000 }).prefault("5m"),
  JWT_SECRET_FILE: z.string().min(1).optional(),
  WEBUI_URL: z
    .url({
      protocol: /^https?$/,
      error: "expected an http(s) URL such as https://chat.example.com",
    })
    .optional(),
  PREVIEW_DOMAIN: z
    .string()
    .regex(DNS_DOMAIN, "expected a DNS domain such as preview.example.com (lowercase, no port)")
    .optional(),
  PREVIEW_SESSION_TTL: duration({ min: 1_000 }).prefault("12h"),
};

export interface FleetConfig {
  namespace: string;
  logLevel: (typeof LOG_LEVELS)[number];
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  /** The reaper deletes a workspace no instance has used for this long. */
  workspaceRetentionMs: number;
  /** Started instances kept without a client (0: no warm pool). */
  poolSize: number;
}

export interface HandlerConfig extends FleetConfig {
  podTemplate: string;
  httpPort: number;
  /** Unset: the admin API answers 403 admin_disabled. Read per request: its file can change. */
  adminToken: Current<string> | undefined;
  /** Unset: any well-formed key is a client. Read per request: its file can change. */
  apiKeys: Current<ApiKeyAllowlist> | undefined;
  /** The files above, re-read (within CREDENTIALS_RELOAD of a change) once started. */
  credentialFiles: ReloadingFile<unknown>[];
  clientIdSecret: string | undefined;
  maxInstancesPerClient: number;
  maxInstances: number;
  readyWaitMs: number;
  activityIntervalMs: number;
  defaultCpuLimit: string;
  defaultMemoryLimit: string;
  gateway: GatewayConfig;
  /** Where the keys that instance tokens are derived from come from. */
  instanceTokenKeys: TokenKeySource;
  /** How soon changed credentials take effect (files, and the fleet's token-key Secret). */
  credentialsReloadMs: number;
  /** Each instance's workspace claim; undefined with WORKSPACES=off (no workspace). */
  workspaces: WorkspaceSettings | undefined;
  signin: SigninConfig;
  /** Previews of apps inside instances; undefined without PREVIEW_DOMAIN (off). */
  previews: PreviewConfig | undefined;
  /** Who a client is: API keys, platform JWTs, both, or any well-formed key (open). */
  clientAuth: ClientAuth;
}

export interface ClientAuth {
  /** X-API-Key (or the path's key) identifies clients; with `apiKeys` unset, any key does. */
  keys: boolean;
  /** `Authorization: Bearer <JWT>` identifies clients. */
  jwt: JwtSettings | undefined;
}

/** Sign-in the way gptme's clients do it: one-time codes, the exchange, event-stream tokens. */
export interface SigninConfig {
  loginCodeTtlMs: number;
  sseTokenTtlMs: number;
  /** Where gptme's web UI is served, for `login.url`; unset: `login.url` is null. */
  webUiUrl: string | undefined;
}

/** Previews: `<port>-<instance name>.<domain>` serves the instance's `/preview/<port>/`. */
export interface PreviewConfig {
  domain: string;
  /** How long a browser stays signed in to one preview host. */
  sessionTtlMs: number;
}

/** The instance gateway (`/api/v1/instances/:name/...`). */
export interface GatewayConfig {
  /** The gateway's public base URL, without a trailing slash; unset: `endpoint.url` is null. */
  publicUrl: string | undefined;
  /** Browser origins allowed to call the client routes and the gateway. */
  corsOrigins: readonly string[];
  proxyTimeoutMs: number;
  proxyMaxBodyBytes: number;
  /** How long a request for a starting instance is held until its gptme-server answers. */
  holdMs: number;
}

/**
 * The instance-token keys: given inline, in a file, or (neither set) in a Kubernetes Secret
 * of the fleet's namespace that the first replica to need it creates, so that a fresh
 * install needs no manual step.
 */
export type TokenKeySource =
  | { kind: "configured"; keys: Current<TokenKeys> }
  | { kind: "kubernetes" };

function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv,
): z.infer<z.ZodObject<S>> {
  // An empty variable means "unset", as it does for most programs configured by environment.
  const present = Object.fromEntries(
    Object.keys(shape)
      .filter((key) => env[key] !== undefined && env[key] !== "")
      .map((key) => [key, env[key]]),
  );
  const result = z.object(shape).safeParse(present);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? "configuration");
    throw new ConfigError(`${variable}: ${issue?.message ?? "invalid value"}`);
  }
  return result.data;
}

function readSetting(sources: ConfigSources, variable: string, path: string): string {
  try {
    return sources.readFile(path);
  } catch (error) {
    throw readError(variable, path, error);
  }
}

/**
 * The admin token's file, which may be absent (the manifests mount an optional Secret): the
 * admin API is off until it appears, and off again if it goes, within the reload bound. A file
 * that is there but empty or unreadable still stops the start.
 */
function optionalFile(
  sources: ConfigSources,
  variable: string,
  path: string,
  withinMs: number,
  files: ReloadingFile<unknown>[],
): ReloadingFile<string> {
  const absent = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";
  let initial: string;
  try {
    initial = sources.readFile(path);
  } catch (error) {
    if (!absent(error)) throw readError(variable, path, error);
    initial = MISSING_FILE;
  }
  const file = new ReloadingFile({
    variable,
    path,
    format: optionalSecretFormat(variable),
    withinMs,
    initial,
    read: (p) =>
      readFile(p, "utf8").catch((error: unknown) => {
        if (absent(error)) return MISSING_FILE;
        throw error;
      }),
  });
  files.push(file);
  return file;
}

function readError(variable: string, path: string, error: unknown): ConfigError {
  const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
  return new ConfigError(`${variable}: cannot read ${path} (${reason})`);
}

function namespaceOf(sources: ConfigSources, configured: string | undefined): string {
  if (configured) return configured;
  try {
    return sources.readFile(SERVICE_ACCOUNT_NAMESPACE_FILE).trim() || "default";
  } catch {
    return "default";
  }
}

export function loadFleetConfig(sources: ConfigSources = defaultSources()): FleetConfig {
  const env = parseEnv(fleetEnv, sources.env);
  return {
    namespace: namespaceOf(sources, env.NAMESPACE),
    logLevel: env.LOG_LEVEL,
    idleTimeoutMs: env.IDLE_TIMEOUT,
    maxLifetimeMs: env.MAX_LIFETIME,
    workspaceRetentionMs: env.WORKSPACE_RETENTION,
    poolSize: env.POOL_SIZE,
  };
}

export function loadHandlerConfig(sources: ConfigSources = defaultSources()): HandlerConfig {
  const env = parseEnv(handlerEnv, sources.env);
  if (env.ADMIN_TOKEN && env.ADMIN_TOKEN_FILE) {
    throw new ConfigError("ADMIN_TOKEN_FILE: set either ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both");
  }
  if (env.INSTANCE_TOKEN_SECRET && env.INSTANCE_TOKEN_SECRET_FILE) {
    throw new ConfigError(
      "INSTANCE_TOKEN_SECRET_FILE: set either INSTANCE_TOKEN_SECRET or INSTANCE_TOKEN_SECRET_FILE, not both",
    );
  }
  const publicHost = env.PUBLIC_URL && new URL(env.PUBLIC_URL).hostname;
  if (
    env.PREVIEW_DOMAIN &&
    publicHost &&
    (publicHost === env.PREVIEW_DOMAIN || publicHost.endsWith(`.${env.PREVIEW_DOMAIN}`))
  ) {
    // Every host under the preview domain is a preview's: the API must live elsewhere.
    throw new ConfigError("PREVIEW_DOMAIN: must not contain PUBLIC_URL's host");
  }
  if (env.CLIENT_AUTH.includes("keys") && !env.API_KEYS_FILE) {
    throw new ConfigError(
      `API_KEYS_FILE: required with CLIENT_AUTH=${env.CLIENT_AUTH}${sources.env.CLIENT_AUTH ? "" : " (the default)"}: set API_KEYS_FILE, or CLIENT_AUTH=jwt with JWT_JWKS_URL and JWT_ISSUER, or CLIENT_AUTH=open behind a gateway that authenticates`,
    );
  }
  const wantsJwt = env.CLIENT_AUTH.includes("jwt");
  if (wantsJwt && !env.JWT_ISSUER) {
    throw new ConfigError(`JWT_ISSUER: required with CLIENT_AUTH=${env.CLIENT_AUTH}`);
  }
  if (wantsJwt && !env.JWT_JWKS_URL && !env.JWT_SECRET_FILE) {
    throw new ConfigError(
      `JWT_JWKS_URL: required with CLIENT_AUTH=${env.CLIENT_AUTH} (or JWT_SECRET_FILE for HS256 tokens)`,
    );
  }
  if (env.POOL_SIZE >= env.MAX_INSTANCES) {
    throw new ConfigError("POOL_SIZE: must be less than MAX_INSTANCES (members count against it)");
  }
  const credentialFiles: ReloadingFile<unknown>[] = [];
  // Read now, so a bad file stops the start; re-read while running once main starts them.
  const reloading = <T>(variable: string, path: string, format: FileFormat<T>) => {
    const file = new ReloadingFile({
      variable,
      path,
      format,
      withinMs: env.CREDENTIALS_RELOAD,
      initial: readSetting(sources, variable, path),
    });
    credentialFiles.push(file);
    return file;
  };
  return {
    ...loadFleetConfig(sources),
    podTemplate: env.POD_TEMPLATE,
    httpPort: env.HTTP_PORT,
    adminToken: env.ADMIN_TOKEN_FILE
      ? optionalFile(
          sources,
          "ADMIN_TOKEN_FILE",
          env.ADMIN_TOKEN_FILE,
          env.CREDENTIALS_RELOAD,
          credentialFiles,
        )
      : env.ADMIN_TOKEN
        ? fixed(env.ADMIN_TOKEN)
        : undefined,
    apiKeys: env.API_KEYS_FILE
      ? reloading("API_KEYS_FILE", env.API_KEYS_FILE, apiKeysFormat)
      : undefined,
    credentialFiles,
    clientIdSecret: env.CLIENT_ID_SECRET,
    maxInstancesPerClient: env.MAX_INSTANCES_PER_CLIENT,
    maxInstances: env.MAX_INSTANCES,
    readyWaitMs: env.READY_WAIT,
    activityIntervalMs: env.ACTIVITY_INTERVAL,
    defaultCpuLimit: env.DEFAULT_CPU_LIMIT,
    defaultMemoryLimit: env.DEFAULT_MEMORY_LIMIT,
    gateway: {
      publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ""),
      corsOrigins: env.CORS_ORIGINS ?? [],
      proxyTimeoutMs: env.PROXY_TIMEOUT,
      proxyMaxBodyBytes: env.PROXY_MAX_BODY,
      holdMs: env.GATEWAY_HOLD,
    },
    instanceTokenKeys: env.INSTANCE_TOKEN_SECRET_FILE
      ? {
          kind: "configured",
          keys: reloading(
            "INSTANCE_TOKEN_SECRET_FILE",
            env.INSTANCE_TOKEN_SECRET_FILE,
            tokenKeysFormat("INSTANCE_TOKEN_SECRET_FILE"),
          ),
        }
      : env.INSTANCE_TOKEN_SECRET
        ? {
            kind: "configured",
            keys: fixed(tokenKeysFormat("INSTANCE_TOKEN_SECRET").parse(env.INSTANCE_TOKEN_SECRET)),
          }
        : { kind: "kubernetes" },
    credentialsReloadMs: env.CREDENTIALS_RELOAD,
    workspaces:
      env.WORKSPACES === "on"
        ? { size: env.WORKSPACE_SIZE, storageClass: env.WORKSPACE_STORAGE_CLASS }
        : undefined,
    clientAuth: {
      keys: env.CLIENT_AUTH !== "jwt",
      jwt: wantsJwt
        ? {
            jwksUrl: env.JWT_JWKS_URL,
            issuer: env.JWT_ISSUER ?? "",
            audience: env.JWT_AUDIENCE,
            refreshMs: env.JWT_JWKS_REFRESH,
            secret: env.JWT_SECRET_FILE
              ? reloading("JWT_SECRET_FILE", env.JWT_SECRET_FILE, secretFormat("JWT_SECRET_FILE"))
              : undefined,
          }
        : undefined,
    },
    signin: {
      loginCodeTtlMs: env.LOGIN_CODE_TTL,
      sseTokenTtlMs: env.SSE_TOKEN_TTL,
      webUiUrl: env.WEBUI_URL,
    },
    previews: env.PREVIEW_DOMAIN
      ? { domain: env.PREVIEW_DOMAIN, sessionTtlMs: env.PREVIEW_SESSION_TTL }
      : undefined,
  };
}

/** What the fleet adds to every instance's Pod: part of its revision (handler and reaper). */
const podEnv = {
  DEFAULT_CPU_LIMIT: handlerEnv.DEFAULT_CPU_LIMIT,
  DEFAULT_MEMORY_LIMIT: handlerEnv.DEFAULT_MEMORY_LIMIT,
  WORKSPACES: handlerEnv.WORKSPACES,
};

const rolloutEnv = {
  ...podEnv,
  ROLLOUT: z.enum(["idle", "off"], { error: "expected idle or off" }).default("idle"),
  ROLLOUT_IDLE: duration().prefault("10m"),
};

/** The reaper's rollout of outdated instances. */
export interface RolloutConfig {
  /** false: ROLLOUT=off. */
  enabled: boolean;
  /** How long an outdated instance must have been idle before its Pod is replaced. */
  idleMs: number;
  /** What the fleet adds to the template, so the reaper computes the revision the handler does. */
  revision: RevisionSettings;
}

export function loadRolloutConfig(sources: ConfigSources = defaultSources()): RolloutConfig {
  const env = parseEnv(rolloutEnv, sources.env);
  return {
    enabled: env.ROLLOUT === "idle",
    idleMs: env.ROLLOUT_IDLE,
    revision: {
      defaultCpuLimit: env.DEFAULT_CPU_LIMIT,
      defaultMemoryLimit: env.DEFAULT_MEMORY_LIMIT,
      workspaces: env.WORKSPACES === "on",
    },
  };
}

/** The handler's view of what goes into a revision. */
export function revisionSettingsOf(config: HandlerConfig): RevisionSettings {
  return {
    defaultCpuLimit: config.defaultCpuLimit,
    defaultMemoryLimit: config.defaultMemoryLimit,
    workspaces: config.workspaces !== undefined,
  };
}
