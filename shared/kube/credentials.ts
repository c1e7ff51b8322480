import { readFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/** What one read of the credentials gives: the headers of the next calls, and TLS settings. */
export interface CredentialsRead {
  /** Authentication headers (a bearer token); none for a client certificate. */
  headers: Record<string, string>;
  /** CA, client certificate and server name for connections to an https server. */
  tls: https.AgentOptions;
  /** An agent of the kubeconfig's own (a proxy's), used as it is. */
  agent?: http.Agent;
}

/**
 * How the fleet reaches and authenticates to the API server. `read` is called again from time
 * to time (KubeTransport: at most once a second, and after a 401): tokens from projected
 * service-account files and exec plugins rotate.
 */
export interface KubeCredentials {
  /** The API server's URL. */
  readonly server: string;
  read(): Promise<CredentialsRead>;
}

/** A file's content or inline base64 data, as kubeconfig fields come (`x` or `x-data`). */
export interface Material {
  file?: string;
  data?: string;
}

/** Credentials written out in a kubeconfig: a token or token file, client certificate, CA. */
export interface PlainCredentials {
  server: string;
  ca?: Material;
  cert?: Material;
  key?: Material;
  token?: string;
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
}

/**
 * Credentials read from their files: the token file at each read (it is rewritten as it
 * rotates), the CA and client certificate once (the transport keeps the connections' TLS
 * settings of its first read); what a kubeconfig without plugins, and a pod's service account,
 * come to.
 */
export function plainCredentials(plain: PlainCredentials): KubeCredentials {
  let tls: Promise<https.AgentOptions> | undefined;
  const readTls = async (): Promise<https.AgentOptions> => {
    const [ca, cert, key] = await Promise.all([
      materialOf(plain.ca),
      materialOf(plain.cert),
      materialOf(plain.key),
    ]);
    const options: https.AgentOptions = { ca, cert, key };
    if (plain.insecureSkipTlsVerify) options.rejectUnauthorized = false;
    if (plain.tlsServerName) options.servername = plain.tlsServerName;
    return options;
  };
  return {
    server: plain.server,
    async read(): Promise<CredentialsRead> {
      // A failed read is not kept: the next one tries again.
      tls ??= readTls().catch((error: unknown) => {
        tls = undefined;
        throw error;
      });
      const [options, tokenFromFile] = await Promise.all([
        tls,
        plain.tokenFile ? readFile(plain.tokenFile, "utf8") : undefined,
      ]);
      const token = plain.token ?? tokenFromFile?.trim();
      const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      return { headers, tls: options };
    },
  };
}

/**
 * Credentials from a client-node KubeConfig, which applies everything a kubeconfig can say
 * (exec and auth-provider plugins, basic auth) as it does for its own clients.
 */
export function credentialsOf(kc: KubeConfig): KubeCredentials {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("the kubeconfig has no current cluster");
  return {
    server,
    async read(): Promise<CredentialsRead> {
      const options: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(options);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        if (value !== undefined) headers[name] = String(value);
      }
      if (options.auth) {
        headers.Authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;
      }
      const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername, agent } = options;
      const tls = { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername };
      // client-node makes a plain agent per call (the transport keeps one) or a proxy's.
      const own = agent && agent.constructor !== https.Agent && agent.constructor !== http.Agent;
      return { headers, tls, agent: own ? (agent as http.Agent) : undefined };
    },
  };
}

async function materialOf(material: Material | undefined): Promise<Buffer | undefined> {
  if (material?.data) return Buffer.from(material.data, "base64");
  if (material?.file) return readFile(material.file);
  return undefined;
}
