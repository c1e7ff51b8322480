import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../config/load.js";
import { loadKubeConfig } from "./kubeconfig.js";

const kubeconfig = (server: string, context: string) => `apiVersion: v1
kind: Config
clusters: [{name: ${context}, cluster: {server: "${server}"}}]
users: [{name: ${context}, user: {token: t}}]
contexts: [{name: ${context}, context: {cluster: ${context}, user: ${context}}}]
current-context: ${context}
`;

function file(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "kc-")), "config");
  writeFileSync(path, content);
  return path;
}

describe("loadKubeConfig", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const only = (env: Record<string, string>) => {
    for (const name of ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]) {
      vi.stubEnv(name, env[name] ?? "");
    }
    vi.stubEnv("HOME", env.HOME ?? "/nonexistent");
  };

  it("reads KUBECONFIG, merging several files with the first one's context", () => {
    only({
      KUBECONFIG: `${file(kubeconfig("https://a.example:6443", "a"))}:${file(kubeconfig("https://b.example:6443", "b"))}`,
    });
    const kc = loadKubeConfig();
    expect(kc.getCurrentCluster()?.server).toBe("https://a.example:6443");
    expect(kc.getContexts().map((c) => c.name)).toEqual(["a", "b"]);
  });

  it("names a KUBECONFIG file that does not exist", () => {
    only({ KUBECONFIG: "/no/such/kubeconfig" });
    expect(() => loadKubeConfig()).toThrow(
      new ConfigError("KUBECONFIG: no file at /no/such/kubeconfig"),
    );
  });

  it("uses the service account inside a cluster", () => {
    only({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" });
    expect(loadKubeConfig().getCurrentCluster()?.server).toBe("https://10.96.0.1:443");
  });

  it("refuses to guess when there are no credentials at all", () => {
    only({});
    expect(() => loadKubeConfig()).toThrow(/^KUBECONFIG: not set, not running in a cluster/);
  });
});
