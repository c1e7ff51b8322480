import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../config/load.js";
import { loadKubeCredentials } from "./kubeconfig.js";

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

describe("loadKubeCredentials", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const only = (env: Record<string, string>) => {
    for (const name of ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]) {
      vi.stubEnv(name, env[name] ?? "");
    }
    vi.stubEnv("HOME", env.HOME ?? "/nonexistent");
  };

  it("reads KUBECONFIG, merging several files with the first one's context", async () => {
    const second = kubeconfig("https://b.example:6443", "b").replace(
      "users: [",
      "users: [{name: a, user: {token: from-b}}, ",
    );
    only({
      KUBECONFIG: `${file(kubeconfig("https://a.example:6443", "a"))}:${file(second)}`,
    });
    const credentials = await loadKubeCredentials();
    expect(credentials.server).toBe("https://a.example:6443");
    // The first file that names a user wins.
    expect((await credentials.read()).headers).toEqual({ Authorization: "Bearer t" });
  });

  it("reads a client certificate by a path relative to its file, or inline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "client.crt"), "CERT");
    writeFileSync(
      join(dir, "config"),
      `clusters: [{name: c, cluster: {server: "https://c.example", certificate-authority-data: ${btoa("CA")}, tls-server-name: api.example}}]
users: [{name: u, user: {client-certificate: client.crt, client-key-data: ${btoa("KEY")}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    only({ KUBECONFIG: join(dir, "config") });
    const { headers, tls } = await (await loadKubeCredentials()).read();
    expect(headers).toEqual({});
    expect({
      ca: String(tls.ca),
      cert: String(tls.cert),
      key: String(tls.key),
      servername: tls.servername,
    }).toEqual({ ca: "CA", cert: "CERT", key: "KEY", servername: "api.example" });
  });

  it("reads a token file again at each read (it rotates)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "token"), "first\n");
    writeFileSync(
      join(dir, "config"),
      `clusters: [{name: c, cluster: {server: "https://c.example"}}]
users: [{name: u, user: {tokenFile: ${join(dir, "token")}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    only({ KUBECONFIG: join(dir, "config") });
    const credentials = await loadKubeCredentials();
    expect((await credentials.read()).headers).toEqual({ Authorization: "Bearer first" });
    writeFileSync(join(dir, "token"), "second");
    expect((await credentials.read()).headers).toEqual({ Authorization: "Bearer second" });
  });

  it("applies an exec plugin through client-node's KubeConfig", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    const plugin = join(dir, "plugin.sh");
    const credential = {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: { token: "from-the-plugin" },
    };
    writeFileSync(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o755 });
    writeFileSync(
      join(dir, "config"),
      `clusters: [{name: c, cluster: {server: "https://c.example"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    only({ KUBECONFIG: join(dir, "config") });
    const credentials = await loadKubeCredentials();
    expect((await credentials.read()).headers.Authorization).toBe("Bearer from-the-plugin");
  });

  it("names a KUBECONFIG file that does not exist", async () => {
    only({ KUBECONFIG: "/no/such/kubeconfig" });
    await expect(loadKubeCredentials()).rejects.toThrow(
      new ConfigError("KUBECONFIG: no file at /no/such/kubeconfig"),
    );
  });

  it("refuses a kubeconfig whose current context names no cluster", async () => {
    only({ KUBECONFIG: file("current-context: nowhere\n") });
    await expect(loadKubeCredentials()).rejects.toThrow(
      new ConfigError("KUBECONFIG: the current context names no cluster"),
    );
  });

  it("uses the service account inside a cluster", async () => {
    only({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" });
    expect((await loadKubeCredentials()).server).toBe("https://10.96.0.1:443");
    only({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" });
    expect((await loadKubeCredentials()).server).toBe("https://[fd00::1]:443");
  });

  it("refuses to guess when there are no credentials at all", async () => {
    only({});
    await expect(loadKubeCredentials()).rejects.toThrow(
      /^KUBECONFIG: not set, not running in a cluster/,
    );
  });
});
