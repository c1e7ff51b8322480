import { readFileSync } from "node:fs";

/** The fleet's version: package.json's, found beside the running code (source, `dist/`, an image's /app). */
export function fleetVersion(): string {
  for (const up of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "gptme-fleet-operator" && pkg.version) return pkg.version;
    } catch {
      // Not at this depth.
    }
  }
  return "unknown";
}
