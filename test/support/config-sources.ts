import type { ConfigSources } from "../../shared/config/sources.js";

/**
 * A configuration's sources for a test: the environment given, and files from a map (any
 * other path is missing). CLIENT_AUTH=keys, the default, needs an API_KEYS_FILE: tests of
 * other settings say "open" unless they set it.
 */
export const sources = (
  env: Record<string, string>,
  files: Record<string, string> = {},
): ConfigSources => ({
  env: { CLIENT_AUTH: "open", ...env },
  readFile: (path: string) => {
    const content = files[path];
    if (content === undefined) throw Object.assign(new Error("missing"), { code: "ENOENT" });
    return content;
  },
});
