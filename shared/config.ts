import { z } from "zod";
import { ConfigError } from "./config-error.js";
import { podEnv } from "./config-rollout.js";
import type { ClientAuth, PreviewConfig, SigninConfig } from "./config-signin.js";
import { checkSigninEnv, signinEnv, signinSettingsOf } from "./config-signin.js";
import {
  type ConfigSources,
  defaultSources,
  namespaceOf,
  optionalFile,
  parseEnv,
  readSetting,
} from "./config-sources.js";
import {
  byteSize,
  duration,
  originList,
  positiveInt,
  quantity,
  wholeNumber,
} from "./config-values.js";
import { type ApiKeyAllowlist, apiKeysFormat, tokenKeysFormat } from "./credential-formats.js";
import type { TokenKeys } from "./instance-token.js";
import { type Current, type FileFormat, fixed, ReloadingFile } from "./reloading-file.js";
import type { WorkspaceSettings } from "./workspace.js";

export { ConfigError } from "./config-error.js";
export { loadRolloutConfig, type RolloutConfig, revisionSettingsOf } from "./config-rollout.js";
export type { ClientAuth, PreviewConfig, SigninConfig } from "./config-signin.js";
export {
  type ConfigSources,
  defaultSources,
  SERVICE_ACCOUNT_NAMESPACE_FILE,
} from "./config-sources.js";
export { ApiKeyAllowlist, parseApiKeys } from "./credential-formats.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** What makes an instance's objects: the handler's cold path, and the reaper's pool members. */
const memberEnv = {
  POD_TEMPLATE: z
    .string()
    .regex(DNS_SUBDOMAIN, "expected a PodTemplate name")
    .default("gptme-client"),
  ...podEnv,
  WORKSPACE_SIZE: quantity.default("1Gi"),
  WORKSPACE_STORAGE_CLASS: z
    .string()
    .regex(DNS_SUBDOMAIN, "expected a StorageClass name")
    .optional(),
  INSTANCE_TOKEN_SECRET: z.string().optional(),
  INSTANCE_TOKEN_SECRET_FILE: z.string().min(1).optional(),
  CREDENTIALS_RELOAD: duration({ min: 1_000 }).prefault("10s"),
};

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
  ...memberEnv,
  HTTP_PORT: z
    .string()
    .regex(/^\d+$/, "expected a port number")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, "expected a port number between 1 and 65535")
    .prefault("8080"),
  ADMIN_TOKEN: z.string().optional(),
  ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  API_KEYS_FILE: z.string().min(1).optional(),
  CLIENT_ID_SECRET: z.string().optional(),
  MAX_INSTANCES_PER_CLIENT: positiveInt.prefault("5"),
  MAX_INSTANCES: positiveInt.prefault("200"),
  READY_WAIT: duration({ max: 60_000 }).prefault("20s"),
  ACTIVITY_INTERVAL: duration().prefault("60s"),
  ...signinEnv,
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
  checkMemberEnv(env);
  checkSigninEnv(env, Boolean(sources.env.CLIENT_AUTH));
  if (env.POOL_SIZE >= env.MAX_INSTANCES) {
    throw new ConfigError("POOL_SIZE: must be less than MAX_INSTANCES (members count against it)");
  }
  const credentialFiles: ReloadingFile<unknown>[] = [];
  const reloading = reloadingFiles(sources, env.CREDENTIALS_RELOAD, credentialFiles);
  return {
    ...loadFleetConfig(sources),
    ...signinSettingsOf(env, reloading),
    ...memberSettingsOf(env, reloading),
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
    gateway: {
      publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ""),
      corsOrigins: env.CORS_ORIGINS ?? [],
      proxyTimeoutMs: env.PROXY_TIMEOUT,
      proxyMaxBodyBytes: env.PROXY_MAX_BODY,
      holdMs: env.GATEWAY_HOLD,
    },
    credentialsReloadMs: env.CREDENTIALS_RELOAD,
    workspaces:
      env.WORKSPACES === "on"
        ? { size: env.WORKSPACE_SIZE, storageClass: env.WORKSPACE_STORAGE_CLASS }
        : undefined,
  };
}

type MemberEnv = z.infer<z.ZodObject<typeof memberEnv>>;
type Reloading = <T>(variable: string, path: string, format: FileFormat<T>) => ReloadingFile<T>;

/** Credential files read now, so a bad one stops the start; re-read once main starts them. */
function reloadingFiles(
  sources: ConfigSources,
  withinMs: number,
  files: ReloadingFile<unknown>[],
): Reloading {
  return (variable, path, format) => {
    const file = new ReloadingFile({
      variable,
      path,
      format,
      withinMs,
      initial: readSetting(sources, variable, path),
    });
    files.push(file);
    return file;
  };
}

function checkMemberEnv(env: MemberEnv): void {
  if (env.INSTANCE_TOKEN_SECRET && env.INSTANCE_TOKEN_SECRET_FILE) {
    throw new ConfigError(
      "INSTANCE_TOKEN_SECRET_FILE: set either INSTANCE_TOKEN_SECRET or INSTANCE_TOKEN_SECRET_FILE, not both",
    );
  }
}

/** What makes an instance's objects: the template, what the fleet adds, its token's keys. */
export interface MemberConfig {
  podTemplate: string;
  defaultCpuLimit: string;
  defaultMemoryLimit: string;
  /** Where the keys that instance tokens are derived from come from. */
  instanceTokenKeys: TokenKeySource;
  /** How soon changed credentials take effect (files, and the fleet's token-key Secret). */
  credentialsReloadMs: number;
  /** Each instance's workspace claim; undefined with WORKSPACES=off (no workspace). */
  workspaces: WorkspaceSettings | undefined;
}

function memberSettingsOf(env: MemberEnv, reloading: Reloading): MemberConfig {
  return {
    podTemplate: env.POD_TEMPLATE,
    defaultCpuLimit: env.DEFAULT_CPU_LIMIT,
    defaultMemoryLimit: env.DEFAULT_MEMORY_LIMIT,
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
  };
}

/**
 * The reaper's part of the handler's settings: it makes pool members as the handler makes
 * instances, and needs nothing of the handler's clients (keys, JWTs, previews).
 */
export function loadMemberConfig(sources: ConfigSources = defaultSources()): MemberConfig {
  const env = parseEnv(memberEnv, sources.env);
  checkMemberEnv(env);
  return memberSettingsOf(env, reloadingFiles(sources, env.CREDENTIALS_RELOAD, []));
}
