import * as http from "node:http";
import * as https from "node:https";
import type { CredentialsRead, KubeCredentials } from "./credentials.js";

/**
 * How long the authentication headers of one call are reused. Tokens from projected
 * service-account files and exec plugins live for minutes to hours; a 401 drops them at once.
 */
const CREDENTIALS_TTL_MS = 1_000;

/** A call that got no complete answer within the transport's timeout. */
export class CallTimeoutError extends Error {
  override name = "CallTimeoutError";
  constructor() {
    super("the API server did not answer in time");
  }
}

interface Credentials {
  headers: Record<string, string>;
  readAt: number;
}

/** An API server's answer, read in full. */
export interface KubeResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/**
 * The HTTP transport to the API server, made for a service that calls it hundreds of times a
 * second: one keep-alive agent carries every call, the authentication headers are read at most
 * once a second, a request is a plain `https.request` and an answer plain JSON text.
 *
 * client-node 1.4, per call, re-reads the kubeconfig's certificate files, builds a new
 * https.Agent (a TLS handshake per request) and goes through node-fetch, then converts every
 * field of the answer into its model objects. Measured on the warm path's GET at 16 in flight,
 * client CPU per call: 0.77-1.15 ms (client-node's transport, already with one shared agent)
 * -> 0.46-0.63 ms (two runs).
 */
export class KubeTransport {
  /** The API server's URL. */
  readonly server: string;
  private agent: http.Agent | undefined;
  /** For watches: each holds its connection for as long as it lasts, outside the calls' cap. */
  private streams: http.Agent | undefined;
  private credentials: Credentials | undefined;
  private refreshing: Promise<Credentials> | undefined;

  constructor(
    private readonly source: KubeCredentials,
    private readonly timeoutMs: number,
  ) {
    this.server = source.server;
  }

  /** Sends one call, bounded by the transport's timeout; the answer is read in full. */
  async request(
    method: string,
    path: string,
    body?: string,
    contentType = "application/json",
  ): Promise<KubeResponse> {
    const headers: Record<string, string> = {
      ...(await this.authHeaders()),
      Accept: "application/json",
    };
    if (body !== undefined) {
      headers["Content-Type"] = contentType;
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const url = this.urlOf(path);
    return new Promise((resolve, reject) => {
      const outgoing = requestOf(url)(url, { method, headers, agent: this.agent }, (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
        incoming.on("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
        incoming.on("end", () => {
          clearTimeout(timer);
          const status = incoming.statusCode ?? 0;
          // Expired or rotated credentials: read them again on the next call.
          if (status === 401) this.credentials = undefined;
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status, headers: flatHeaders(incoming.headers), text });
        });
      });
      // A plain timer, not an AbortSignal per call: the signal's DOMException and listeners
      // were 2.5% of the handler's CPU on the warm path.
      const timer = setTimeout(() => outgoing.destroy(new CallTimeoutError()), this.timeoutMs);
      outgoing.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      outgoing.end(body);
    });
  }

  /** A GET of a path on the API server. */
  get(path: string): Promise<KubeResponse> {
    return this.request("GET", path);
  }

  /**
   * A GET whose answer streams for as long as the server keeps it open (a watch), on a
   * connection of its own: no timeout but `signal`'s. Resolves once the response starts.
   */
  async stream(path: string, signal: AbortSignal): Promise<http.IncomingMessage> {
    const headers = await this.authHeaders();
    const url = this.urlOf(path);
    return new Promise((resolve, reject) => {
      const outgoing = requestOf(url)(url, { headers, agent: this.streams, signal }, resolve);
      outgoing.on("error", reject);
      outgoing.end();
    });
  }

  /** Closes its connections, so a process can exit promptly. */
  close(): void {
    this.agent?.destroy();
    this.streams?.destroy();
  }

  /** A path on the API server, under the server URL's own path if it has one (a proxy's). */
  private urlOf(path: string): URL {
    return new URL(`${this.server.replace(/\/+$/, "")}${path}`);
  }

  /** The authentication headers of the next call: read again once a second old. */
  private async authHeaders(): Promise<Record<string, string>> {
    const credentials = this.credentials;
    const fresh = credentials && Date.now() - credentials.readAt < CREDENTIALS_TTL_MS;
    return (fresh ? credentials : await this.refresh()).headers;
  }

  /**
   * Reads the credentials (certificate files, tokens, exec plugins) and keeps what they say:
   * the headers, and on the first read their TLS settings in one keep-alive agent. Concurrent
   * callers share one read; a failed read is not kept, so the next call tries again.
   */
  private refresh(): Promise<Credentials> {
    this.refreshing ??= (async () => {
      try {
        const read = await this.source.read();
        this.agent ??= keepAliveAgent(this.server, read);
        this.streams ??= read.agent ?? agentFor(this.server, read.tls);
        this.credentials = { headers: { ...read.headers }, readAt: Date.now() };
        return this.credentials;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}

/**
 * One keep-alive agent with the credentials' TLS settings (CA, client certificate, server
 * name); an agent of their own (a proxy's) is used as it is.
 */
function keepAliveAgent(server: string, { agent, tls }: CredentialsRead): http.Agent {
  // 64 requests in flight ran as fast over 16 connections as over 64 (benchmark), and each
  // replica's connections are the API server's to hold.
  return agent ?? agentFor(server, { ...tls, keepAlive: true, maxSockets: 16 });
}

const requestOf = (url: URL) => (url.protocol === "http:" ? http.request : https.request);

function agentFor(server: string, options: https.AgentOptions): http.Agent {
  return server.startsWith("http:") ? new http.Agent(options) : new https.Agent(options);
}

function flatHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}
