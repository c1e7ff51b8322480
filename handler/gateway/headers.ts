import type { IncomingHttpHeaders } from "node:http";
import type { HeaderMap } from "../cors.js";
import { rewriteCookiePath, rewriteLocation } from "./request.js";

/** One exchange to forward to an instance's gptme-server. */
export interface ProxyCall {
  host: string;
  port: number;
  /** `Bearer <the instance's token>`: the only credential gptme-server ever sees. */
  authorization: string;
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
  rewriteHeaders?: (headers: IncomingHttpHeaders) => void;
}

/**
 * Headers that never travel on: the client's credentials (the instance's token replaces
 * them), the Host (the pod's address is the Host upstream), and those for one hop only (RFC
 * 9110 7.6.1; besides those a Connection header names).
 */
const NOT_FORWARDED = new Set([
  "authorization",
  "x-api-key",
  "proxy-authorization",
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
]);
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer"]);
/**
 * Not sent by the proxy's client, which frames the body itself and needs no `100 Continue`
 * (the handler's server answered it). An upgrade keeps `upgrade`, and its own framing.
 */
const FRAMED_BY_CLIENT = new Set(["transfer-encoding", "expect", "upgrade"]);

/** The headers a Connection header names for its hop alone (usually none). */
function namedByConnection(
  connection: string | string[] | number | undefined,
): Set<string> | undefined {
  // Usually absent, `keep-alive` or `close`.
  if (typeof connection !== "string" || /^\s*(keep-alive|close)?\s*$/i.test(connection)) {
    return undefined;
  }
  return new Set(connection.split(",").map((token) => token.trim().toLowerCase()));
}

/**
 * The headers gptme-server receives: the client's, but for its credentials (the instance's
 * token instead), the hop's own and Host (the pod's address is the Host upstream), plus
 * where the request came from (`X-Forwarded-*`, the public prefix). An upgrade keeps the two
 * headers that make it one.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  call: ProxyCall,
  client: { address: string | undefined; encrypted: boolean },
  upgrade: boolean,
): IncomingHttpHeaders {
  const named = namedByConnection(incoming.connection);
  const headers: IncomingHttpHeaders = {};
  for (const name in incoming) {
    if (upgrade) {
      if (
        (NOT_FORWARDED.has(name) || named?.has(name)) &&
        name !== "connection" &&
        name !== "upgrade"
      ) {
        continue;
      }
    } else if (NOT_FORWARDED.has(name) || FRAMED_BY_CLIENT.has(name) || named?.has(name)) continue;
    headers[name] = incoming[name];
  }
  headers.authorization = call.authorization;
  const forwardedFor = incoming["x-forwarded-for"];
  if (client.address) {
    headers["x-forwarded-for"] = forwardedFor
      ? `${forwardedFor}, ${client.address}`
      : client.address;
  }
  headers["x-forwarded-proto"] ??= client.encrypted ? "https" : "http";
  if (incoming.host) headers["x-forwarded-host"] ??= incoming.host;
  if (call.prefix) headers["x-forwarded-prefix"] = call.prefix;
  return headers;
}

/**
 * The pod's answer as the client receives it: the pod's hop is not the client's, redirects
 * and cookies stay under the instance's prefix, and the gateway alone decides CORS.
 */
export function clientResponseHeaders(
  upstream: IncomingHttpHeaders,
  call: ProxyCall,
  httpVersion: string,
): IncomingHttpHeaders {
  const named = namedByConnection(upstream.connection);
  const headers: IncomingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP.has(name) || named?.has(name) || name.startsWith("access-control-")) continue;
    headers[name] = upstream[name];
  }
  // Node frames the body for an HTTP/1.0 client itself.
  if (httpVersion === "1.0") delete headers["transfer-encoding"];
  if (headers.location) {
    const host = call.host.includes(":") ? `[${call.host}]` : call.host;
    headers.location = rewriteLocation(
      headers.location,
      call.prefix,
      `http://${host}:${call.port}`,
      call.upstreamPrefix,
    );
  }
  // One cookie may come as a string, several as a list.
  const cookies: string[] | string | undefined = headers["set-cookie"];
  if (cookies !== undefined) {
    headers["set-cookie"] = (typeof cookies === "string" ? [cookies] : cookies).map((c) =>
      rewriteCookiePath(c, call.prefix),
    );
  }
  for (const name in call.responseHeaders) {
    const value = call.responseHeaders[name] as string;
    const own = headers[name];
    headers[name] = name === "vary" && typeof own === "string" ? `${own}, ${value}` : value;
  }
  call.rewriteHeaders?.(headers);
  return headers;
}
