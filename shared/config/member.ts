import { z } from "zod";
import type { WorkspaceSettings } from "../instance/workspace.js";
import type { TokenKeys } from "../tokens/instance-token.js";
import { tokenKeysFormat } from "./credential-formats.js";
import { ConfigError } from "./error.js";
import { type Current, type FileFormat, fixed, ReloadingFile } from "./reloading-file.js";
import { podEnv } from "./rollout.js";
import { type ConfigSources, defaultSources, parseEnv, readSetting } from "./sources.js";
import { duration, quantity } from "./values.js";

// What makes an instance's objects, read by the handler (its cold path) and by the reaper
// (its pool members): the template, what the fleet adds to it, and the token's keys.

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** What makes an instance's objects: the handler's cold path, and the reaper's pool members. */
export const memberEnv = {
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

/**
 * The instance-token keys: given inline, in a file, or (neither set) in a Kubernetes Secret
 * of the fleet's namespace that the first replica to need it creates, so that a fresh
 * install needs no manual step.
 */
export type TokenKeySource =
  | { kind: "configured"; keys: Current<TokenKeys> }
  | { kind: "kubernetes" };

export type MemberEnv = z.infer<z.ZodObject<typeof memberEnv>>;
export type Reloading = <T>(
  variable: string,
  path: string,
  format: FileFormat<T>,
) => ReloadingFile<T>;

/** Credential files read now, so a bad one stops the start; re-read once main starts them. */
export function reloadingFiles(
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

export function checkMemberEnv(env: MemberEnv): void {
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

export function memberSettingsOf(env: MemberEnv, reloading: Reloading): MemberConfig {
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
