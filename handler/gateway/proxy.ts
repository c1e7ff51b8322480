import * as http from "node:http";
import type { Duplex } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import { createProxyServer } from "httpxy";
import type { HeaderMap } from "../cors.js";
import { FleetError } from "../errors/fleet-error.js";
import { rewriteCookiePath, rewriteLocation } from "./request.js";

/** One exchange to forward to an instance's gptme-server. */
export interface ProxyCall {
  host: string;
  port: number;
  /** The instance's token: the only credential gptme-server ever sees. */
  token: string;
  /** The instance's public prefix, for redirects and cookies. */
  prefix: string;
  upstreamPath: string;
  /** Added to the answer (CORS). */
  responseHeaders: HeaderMap;
  /**
   * Where the public prefix lives upstream (a preview host's `/` is `/preview/<port>` there);
   * unset: the pod's root.
   */
  upstreamPrefix?: string;
  /** The caller's last word on the pod's response headers (after the gateway's own rewrites). */
  rewriteHeaders?: (headers: http.IncomingHttpHeaders) => void;
}

export interface ProxySettings {
  /** Wait for response headers (open streams have no idle limit). */
  timeoutMs: number;
  maxBodyBytes: number;
}

interface Exchange {
  call: ProxyCall;
  proxyReq?: http.ClientRequest;
  timer?: NodeJS.Timeout;
  failed: boolean;
  fail: (failure: FleetError) => void;
}

/** Client credentials that never travel on to an instance. */
const CREDENTIAL_HEADERS = ["authorization", "x-api-key", "proxy-authorization"];
/** Headers for one hop only (RFC 9110 7.6.1), besides those a Connection header names. */
const HOP_HEADERS = ["connection", "keep-alive", "proxy-connection", "te", "trailer"];

/** Removes a message's hop-by-hop headers; an upgrade keeps the two that make it one. */
function dropHopHeaders(headers: http.IncomingHttpHeaders, upgrade: boolean): void {
  const named = String(headers.connection ?? "")
    .split(",")
    .map((token) => token.trim().toLowerCase())
    .filter(Boolean);
  for (const name of [...HOP_HEADERS, ...named]) {
    if (upgrade && (name === "connection" || name === "upgrade")) continue;
    delete headers[name];
  }
}

/**
 * Forwards HTTP exchanges and WebSocket upgrades to gptme-server pods (httpxy: node:http
 * streams both ways, no buffering, hop-by-hop headers dropped, WebSockets piped), with what
 * the fleet adds: the instance's token in place of the client's credentials, a bound on
 * the wait for response headers, a bound on request bodies, redirects and cookies kept
 * under the instance's prefix, and failures answered as `onFailure` decides.
 */
export class InstanceProxy {
  private readonly proxy = createProxyServer({ changeOrigin: true });
  // Pods answer `Connection: close` today; keep-alive costs nothing if that changes.
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly exchanges = new WeakMap<http.IncomingMessage, Exchange>();

  constructor(private readonly settings: ProxySettings) {
    this.proxy.on("proxyReq", (proxyReq, req) => {
      const exchange = this.exchanges.get(req);
      if (exchange) exchange.proxyReq = proxyReq;
    });
    this.proxy.on("proxyRes", (proxyRes, req) => {
      const exchange = this.exchanges.get(req);
      if (!exchange) return;
      clearTimeout(exchange.timer);
      rewriteResponseHeaders(proxyRes.headers, exchange.call);
    });
    this.proxy.on("error", (error, req) => {
      const exchange = req && this.exchanges.get(req);
      exchange?.fail(unreachable(error));
    });
  }

  /**
   * Forwards one exchange; resolves when it is over. `onFailure` answers a failure when no
   * response header was sent yet (else the client's connection is cut).
   */
  async web(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    call: ProxyCall,
    onFailure: (failure: FleetError) => void,
  ): Promise<void> {
    const exchange: Exchange = {
      call,
      failed: false,
      fail: (failure) => {
        if (exchange.failed) return;
        exchange.failed = true;
        clearTimeout(exchange.timer);
        exchange.proxyReq?.destroy();
        if (res.headersSent) res.destroy();
        else onFailure(failure);
      },
    };
    this.exchanges.set(req, exchange);
    exchange.timer = setTimeout(
      () =>
        exchange.fail(
          new FleetError(
            "instance_timeout",
            `The instance did not answer within ${this.settings.timeoutMs / 1000}s.`,
          ),
        ),
      this.settings.timeoutMs,
    );
    prepareRequest(req, call, false);
    // A body of unknown length is counted as it streams; one with a length was checked before.
    const chunked = req.headers["content-length"] === undefined && req.headers["transfer-encoding"];
    const buffer = chunked ? this.limited(req, exchange) : undefined;
    try {
      await this.proxy.web(req, res, {
        target: { protocol: "http:", host: call.host, port: call.port },
        agent: this.agent,
        buffer,
      });
    } finally {
      clearTimeout(exchange.timer);
    }
  }

  /** Forwards a WebSocket upgrade; the socket is cut on any failure. */
  async ws(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    call: ProxyCall,
  ): Promise<void> {
    prepareRequest(req, call, true);
    await this.proxy
      .ws(
        req,
        socket as never,
        {
          target: { protocol: "http:", host: call.host, port: call.port },
          upgradeTimeout: this.settings.timeoutMs,
        },
        head,
      )
      .catch(() => socket.destroy());
  }

  close(): void {
    this.agent.destroy();
  }

  private limited(req: http.IncomingMessage, exchange: Exchange): Transform {
    const max = this.settings.maxBodyBytes;
    let seen = 0;
    const limiter = new Transform({
      transform(chunk: Buffer, _encoding: string, done: TransformCallback) {
        seen += chunk.length;
        if (seen > max) done(new Error("request body too large"));
        else done(null, chunk);
      },
    });
    limiter.on("error", () => {
      req.unpipe(limiter);
      req.resume();
      exchange.fail(tooLarge(max));
    });
    return req.pipe(limiter);
  }
}

export function tooLarge(maxBytes: number): FleetError {
  return new FleetError("body_too_large", `The request body is larger than ${maxBytes} bytes.`);
}

function unreachable(error: Error & { code?: string }): FleetError {
  return new FleetError(
    "instance_unreachable",
    `The instance cannot be reached (${error.code ?? "connection failed"}); try again shortly.`,
  );
}

/** Rewrites the incoming request into what gptme-server receives. */
function prepareRequest(req: http.IncomingMessage, call: ProxyCall, upgrade: boolean): void {
  const headers = req.headers;
  dropHopHeaders(headers, upgrade);
  for (const name of CREDENTIAL_HEADERS) delete headers[name];
  headers.authorization = `Bearer ${call.token}`;
  const client = req.socket.remoteAddress;
  const forwardedFor = headers["x-forwarded-for"];
  if (client) headers["x-forwarded-for"] = forwardedFor ? `${forwardedFor}, ${client}` : client;
  headers["x-forwarded-proto"] ??=
    "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
  if (headers.host) headers["x-forwarded-host"] ??= headers.host;
  if (call.prefix) headers["x-forwarded-prefix"] = call.prefix;
  req.url = call.upstreamPath;
}

function rewriteResponseHeaders(headers: http.IncomingHttpHeaders, call: ProxyCall): void {
  // The pod's hop (gptme-server closes every connection) is not the client's.
  dropHopHeaders(headers, false);
  const upstreamOrigin = `http://${call.host.includes(":") ? `[${call.host}]` : call.host}:${call.port}`;
  if (headers.location) {
    headers.location = rewriteLocation(
      headers.location,
      call.prefix,
      upstreamOrigin,
      call.upstreamPrefix,
    );
  }
  if (headers["set-cookie"]) {
    headers["set-cookie"] = headers["set-cookie"].map((c) => rewriteCookiePath(c, call.prefix));
  }
  // The gateway alone decides CORS: whatever the pod says is replaced.
  for (const name of Object.keys(headers)) {
    if (name.startsWith("access-control-")) delete headers[name];
  }
  for (const [name, value] of Object.entries(call.responseHeaders)) {
    const upstream = headers[name];
    headers[name] =
      name === "vary" && typeof upstream === "string" ? `${upstream}, ${value}` : value;
  }
  call.rewriteHeaders?.(headers);
}
