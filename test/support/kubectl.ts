import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

/** The kubectl the local control plane was built with, else FLEET_KUBECTL, else the PATH's. */
export function kubectlBinary(): string {
  if (process.env.FLEET_KUBECTL) return process.env.FLEET_KUBECTL;
  const env = readFileSync(resolve(ROOT, "scripts/cluster-env.sh"), "utf8");
  const version = /^K8S_VERSION=(\S+)/m.exec(env)?.[1];
  const cache = process.env.FLEET_CACHE_DIR ?? resolve(homedir(), ".cache/gptme-fleet");
  const built = resolve(cache, "bin", `kubectl-v${version}`);
  return existsSync(built) ? built : "kubectl";
}

/** Runs kubectl against the test cluster and returns its standard output. */
export function kubectl(kubeconfig: string, args: string[], input?: string): string {
  return execFileSync(kubectlBinary(), ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** The rows of `kubectl get` as printed, keyed by column header (cut at the headers' offsets). */
export function kubectlTable(kubeconfig: string, args: string[]): Record<string, string>[] {
  const [header = "", ...rows] = kubectl(kubeconfig, ["get", ...args])
    .trimEnd()
    .split("\n");
  const columns = [...header.matchAll(/\S+( \S+)*/g)].map((m) => ({
    name: m[0],
    start: m.index ?? 0,
  }));
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((c, i) => [c.name, row.slice(c.start, columns[i + 1]?.start).trim()]),
    ),
  );
}
