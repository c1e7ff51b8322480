import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { MISSING_FILE, optionalSecretFormat } from "./credential-formats.js";
import { ConfigError } from "./error.js";
import { ReloadingFile } from "./reloading-file.js";

/** Where a pod finds its own namespace when it runs with a service account. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE =
  "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** The I/O configuration loading needs, injectable so tests need no files. */
export interface ConfigSources {
  env: NodeJS.ProcessEnv;
  readFile: (path: string) => string;
}

export const defaultSources = (): ConfigSources => ({
  env: process.env,
  readFile: (path) => readFileSync(path, "utf8"),
});

export function parseEnv<S extends z.ZodRawShape>(
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

export function readSetting(sources: ConfigSources, variable: string, path: string): string {
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
export function optionalFile(
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

export function readError(variable: string, path: string, error: unknown): ConfigError {
  const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
  return new ConfigError(`${variable}: cannot read ${path} (${reason})`);
}

export function namespaceOf(sources: ConfigSources, configured: string | undefined): string {
  if (configured) return configured;
  try {
    return sources.readFile(SERVICE_ACCOUNT_NAMESPACE_FILE).trim() || "default";
  } catch {
    return "default";
  }
}
