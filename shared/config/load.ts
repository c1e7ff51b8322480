import { z } from "zod";
import type { RevisionSettings } from "../instance/revision.js";
import { type ApiKeyAllowlist, apiKeysFormat } from "./credential-formats.js";
import { ConfigError } from "./error.js";
import {
  checkMemberEnv,
  type MemberConfig,
  memberEnv,
  memberSettingsOf,
  reloadingFiles,
} from "./member.js";
import { defaultPlans, type Plans, plansFormat } from "./plans.js";
import { type Current, fixed, type ReloadingFile } from "./reloading-file.js";
import type { ClientAuth, PreviewConfig, SigninConfig } from "./signin.js";
import { checkSigninEnv, signinEnv, signinSettingsOf } from "./signin.js";
import {
  type ConfigSources,
  defaultSources,
  namespaceOf,
  optionalFile,
  parseEnv,
} from "./sources.js";
import { byteSize, duration, originList, positiveInt, wholeNumber } from "./values.js";

export { ApiKeyAllowlist, parseApiKeys } from "./credential-formats.js";
export { ConfigError } from "./error.js";
export { loadMemberConfig, type MemberConfig, type TokenKeySource } from "./member.js";
export { DEFAULT_PLAN, type Plan, Plans } from "./plans.js";
export { loadRolloutConfig, type RolloutConfig } from "./rollout.js";
export type { ClientAuth, PreviewConfig, SigninConfig } from "./signin.js";
export {
  type ConfigSources,
  defaultSources,
  SERVICE_ACCOUNT_NAMESPACE_FILE,
} from "./sources.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Settings both the handler and the reaper use. */
const fleetEnv = {
  NAMESPACE: z.string().regex(DNS_LABEL, "expected a namespace name").optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  IDLE_TIMEOUT: duration().prefault("30m"),
  MAX_LIFETIME: duration().prefault("24h"),
  WORKSPACE_RETENTION: duration({ min: 1_000 }).prefault("30d"),
  POOL_SIZE: wholeNumber.prefault("0"),
};

/** What the plans are made of: PLANS_FILE, and the variables a plan's left-out fields take. */
const planEnv = {
  ...fleetEnv,
  ...memberEnv,
  PLANS_FILE: z.string().min(1).optional(),
  MAX_INSTANCES_PER_CLIENT: positiveInt.prefault("5"),
  MAX_INSTANCES: positiveInt.prefault("200"),
};

const handlerEnv = {
  ...planEnv,
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

/** The handler's settings: what makes an instance (shared with the reaper's pool), and more. */
export interface HandlerConfig extends FleetConfig, MemberConfig {
  httpPort: number;
  /** Unset: the admin API answers 403 admin_disabled. Read per request: its file can change. */
  adminToken: Current<string> | undefined;
  /** Unset: any well-formed key is a client. Read per request: its file can change. */
  apiKeys: Current<ApiKeyAllowlist> | undefined;
  /** The plans (PLANS_FILE, else one plan `default`). Read per request: its file can change. */
  plans: Current<Plans>;
  /** The files above, re-read (within CREDENTIALS_RELOAD of a change) once started. */
  credentialFiles: ReloadingFile<unknown>[];
  clientIdSecret: string | undefined;
  maxInstancesPerClient: number;
  maxInstances: number;
  readyWaitMs: number;
  activityIntervalMs: number;
  gateway: GatewayConfig;
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
    plans: loadPlans(sources, credentialFiles),
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

/**
 * The plans: PLANS_FILE (read now, so a bad file stops the start; pushed on `files` to be
 * re-read once started), or one plan `default` made from the fleet-wide variables. The
 * reaper reads them once per pass; the handler re-reads the file within CREDENTIALS_RELOAD.
 */
export function loadPlans(
  sources: ConfigSources = defaultSources(),
  files: ReloadingFile<unknown>[] = [],
): Current<Plans> {
  const env = parseEnv(planEnv, sources.env);
  const defaults = {
    template: env.POD_TEMPLATE,
    maxInstancesPerClient: env.MAX_INSTANCES_PER_CLIENT,
    workspaceSize: env.WORKSPACE_SIZE,
    poolSize: env.POOL_SIZE,
  };
  if (!env.PLANS_FILE) return fixed(defaultPlans(defaults));
  const format = plansFormat({
    path: env.PLANS_FILE,
    defaults,
    maxInstances: env.MAX_INSTANCES,
  });
  return reloadingFiles(sources, env.CREDENTIALS_RELOAD, files)(
    "PLANS_FILE",
    env.PLANS_FILE,
    format,
  );
}

/** The handler's view of what goes into a revision. */
export function revisionSettingsOf(config: HandlerConfig): RevisionSettings {
  return {
    defaultCpuLimit: config.defaultCpuLimit,
    defaultMemoryLimit: config.defaultMemoryLimit,
    workspaces: config.workspaces !== undefined,
  };
}
