import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { load } from "js-yaml";
import { ConfigError } from "../config/load.js";
import {
  credentialsOf,
  type KubeCredentials,
  type Material,
  type PlainCredentials,
  plainCredentials,
} from "./credentials.js";

/** Where a pod's service account is mounted. */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The Kubernetes credentials: `KUBECONFIG` (or ~/.kube/config) for development, the pod's
 * service account when deployed. Unlike client-node's KubeConfig.loadFromDefault(), it never
 * falls back to http://localhost:8080: with no credentials at all the process stops with a
 * clear error.
 *
 * A kubeconfig is read here, and client-node is loaded only for one that needs what only its
 * KubeConfig applies (exec and auth-provider plugins, basic auth, a proxy): loading it costs a
 * process 28 MB of heap (its generated API clients and models, which the fleet does not use)
 * and 74 MB of RSS.
 */
export async function loadKubeCredentials({
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
}: {
  /** Where the pod's service account is mounted (tests point elsewhere). */
  serviceAccountDir?: string;
} = {}): Promise<KubeCredentials> {
  const { KUBECONFIG, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT } = process.env;
  const homeConfig = join(homedir(), ".kube", "config");
  let paths: string[];
  if (KUBECONFIG) {
    paths = KUBECONFIG.split(":").filter(Boolean);
    const missing = paths.filter((path) => !existsSync(path));
    if (missing.length > 0) throw new ConfigError(`KUBECONFIG: no file at ${missing.join(", ")}`);
  } else if (KUBERNETES_SERVICE_HOST && KUBERNETES_SERVICE_PORT) {
    const host = KUBERNETES_SERVICE_HOST.includes(":")
      ? `[${KUBERNETES_SERVICE_HOST}]`
      : KUBERNETES_SERVICE_HOST;
    return plainCredentials({
      server: `https://${host}:${KUBERNETES_SERVICE_PORT}`,
      ca: { file: join(serviceAccountDir, "ca.crt") },
      tokenFile: join(serviceAccountDir, "token"),
    });
  } else if (existsSync(homeConfig)) {
    paths = [homeConfig];
  } else {
    throw new ConfigError(
      "KUBECONFIG: not set, not running in a cluster, and no ~/.kube/config (for the local control plane: KUBECONFIG=.cluster/kubeconfig)",
    );
  }
  const { cluster, user } = currentOf(paths.map(readKubeconfig));
  if (!cluster || typeof cluster.value.server !== "string" || !cluster.value.server) {
    throw new ConfigError("KUBECONFIG: the current context names no cluster");
  }
  if (needsClientNode(cluster, user)) return clientNodeCredentials(paths);
  return plainCredentials(plainOf(cluster, user));
}

/** One kubeconfig file's entries, with the directory its relative paths are relative to. */
interface Kubeconfig {
  dir: string;
  currentContext?: string;
  clusters: Map<string, Record<string, unknown>>;
  users: Map<string, Record<string, unknown>>;
  contexts: Map<string, { cluster?: string; user?: string }>;
}

/** What the first file to say it said, and that file's directory. */
interface Found<T> {
  value: T;
  dir: string;
}

/** A cluster's or user's fields. */
type Entry = Found<Record<string, unknown>>;

function readKubeconfig(path: string): Kubeconfig {
  let parsed: Record<string, unknown>;
  try {
    parsed = (load(readFileSync(path, "utf8")) ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`KUBECONFIG: ${path} is not valid YAML (${(error as Error).message})`);
  }
  const named = <T>(key: string, field: string) => {
    const map = new Map<string, T>();
    const list = Array.isArray(parsed[key]) ? (parsed[key] as Record<string, unknown>[]) : [];
    for (const item of list) {
      if (typeof item?.name === "string" && !map.has(item.name)) {
        map.set(item.name, (item[field] ?? {}) as T);
      }
    }
    return map;
  };
  const current = parsed["current-context"];
  return {
    dir: dirname(resolve(path)),
    currentContext: typeof current === "string" && current ? current : undefined,
    clusters: named("clusters", "cluster"),
    users: named("users", "user"),
    contexts: named("contexts", "context"),
  };
}

/**
 * The current context's cluster and user across several files, merged as kubectl merges
 * them: the first file that sets a current context wins, and so does the first file that
 * defines a name.
 */
function currentOf(files: Kubeconfig[]): { cluster?: Entry; user?: Entry } {
  const first = <T>(pick: (file: Kubeconfig) => T | undefined): Found<T> | undefined => {
    for (const file of files) {
      const value = pick(file);
      if (value !== undefined) return { value, dir: file.dir };
    }
    return undefined;
  };
  const current = first((file) => file.currentContext)?.value;
  const context = current ? first((file) => file.contexts.get(current))?.value : undefined;
  const { cluster, user } = context ?? {};
  return {
    cluster: cluster ? first((file) => file.clusters.get(cluster)) : undefined,
    user: user ? first((file) => file.users.get(user)) : undefined,
  };
}

/** Whether the context needs what only client-node's KubeConfig applies. */
function needsClientNode(cluster: Entry, user: Entry | undefined): boolean {
  const fields = user?.value ?? {};
  const plugins = ["exec", "auth-provider", "username", "password"];
  return plugins.some((key) => fields[key] !== undefined) || Boolean(cluster.value["proxy-url"]);
}

function plainOf(cluster: Entry, user: Entry | undefined): PlainCredentials {
  const c = cluster.value;
  const u = user?.value ?? {};
  const userDir = user?.dir ?? cluster.dir;
  const text = (fields: Record<string, unknown>, key: string) =>
    typeof fields[key] === "string" && fields[key] !== "" ? (fields[key] as string) : undefined;
  // Relative paths are relative to the file that names them, as kubectl reads them.
  const path = (file: string | undefined, dir: string) =>
    file && (isAbsolute(file) ? file : join(dir, file));
  const material = (fields: Record<string, unknown>, key: string, dir: string): Material => ({
    data: text(fields, `${key}-data`),
    file: path(text(fields, key), dir),
  });
  return {
    server: text(c, "server") ?? "",
    ca: material(c, "certificate-authority", cluster.dir),
    cert: material(u, "client-certificate", userDir),
    key: material(u, "client-key", userDir),
    token: text(u, "token"),
    tokenFile: path(text(u, "tokenFile"), userDir),
    insecureSkipTlsVerify: c["insecure-skip-tls-verify"] === true,
    tlsServerName: text(c, "tls-server-name"),
  };
}

/** Loads client-node (only now) for a kubeconfig that needs it (needsClientNode). */
async function clientNodeCredentials(paths: string[]): Promise<KubeCredentials> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  kc.loadFromFile(paths[0] ?? "");
  for (const path of paths.slice(1)) {
    const next = new KubeConfig();
    next.loadFromFile(path);
    kc.mergeConfig(next, true);
  }
  return credentialsOf(kc);
}
