import { z } from "zod";
import { secretFormat } from "./credential-formats.js";
import { ConfigError } from "./error.js";
import type { JwtSettings } from "./jwt-settings.js";
import type { FileFormat, ReloadingFile } from "./reloading-file.js";
import { duration } from "./values.js";

// Who a client is (API keys, platform JWTs), how gptme's clients sign in (one-time codes,
// event-stream tokens), and the preview hosts whose links reuse those codes.

/** Dot-separated DNS labels; room is left for the `<port>-<instance name>.` in front. */
const DNS_DOMAIN =
  /^(?=.{1,200}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export const signinEnv = {
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
  JWT_PLAN_CLAIM: z
    .string()
    .regex(/^[^.\s]+(\.[^.\s]+)*$/, "expected a claim's dot path such as app_metadata.plan")
    .optional(),
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

type SigninEnv = z.infer<z.ZodObject<typeof signinEnv>> & {
  API_KEYS_FILE?: string;
  PUBLIC_URL?: string;
};

type Reloading = <T>(variable: string, path: string, format: FileFormat<T>) => ReloadingFile<T>;

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

/** Settings that only make sense together; `clientAuthSet`: CLIENT_AUTH was given, not defaulted. */
export function checkSigninEnv(env: SigninEnv, clientAuthSet: boolean): void {
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
      `API_KEYS_FILE: required with CLIENT_AUTH=${env.CLIENT_AUTH}${clientAuthSet ? "" : " (the default)"}: set API_KEYS_FILE, or CLIENT_AUTH=jwt with JWT_JWKS_URL and JWT_ISSUER, or CLIENT_AUTH=open behind a gateway that authenticates`,
    );
  }
  const wantsJwt = env.CLIENT_AUTH.includes("jwt");
  if (env.JWT_PLAN_CLAIM && !wantsJwt) {
    throw new ConfigError(
      `JWT_PLAN_CLAIM: names a claim of sign-in tokens, which CLIENT_AUTH=${env.CLIENT_AUTH} does not accept`,
    );
  }
  if (wantsJwt && !env.JWT_ISSUER) {
    throw new ConfigError(`JWT_ISSUER: required with CLIENT_AUTH=${env.CLIENT_AUTH}`);
  }
  if (wantsJwt && !env.JWT_JWKS_URL && !env.JWT_SECRET_FILE) {
    throw new ConfigError(
      `JWT_JWKS_URL: required with CLIENT_AUTH=${env.CLIENT_AUTH} (or JWT_SECRET_FILE for HS256 tokens)`,
    );
  }
}

export function signinSettingsOf(
  env: SigninEnv,
  reloading: Reloading,
): { clientAuth: ClientAuth; signin: SigninConfig; previews: PreviewConfig | undefined } {
  const wantsJwt = env.CLIENT_AUTH.includes("jwt");
  return {
    clientAuth: {
      keys: env.CLIENT_AUTH !== "jwt",
      jwt: wantsJwt
        ? {
            jwksUrl: env.JWT_JWKS_URL,
            issuer: env.JWT_ISSUER ?? "",
            audience: env.JWT_AUDIENCE,
            refreshMs: env.JWT_JWKS_REFRESH,
            planClaim: env.JWT_PLAN_CLAIM?.split("."),
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
