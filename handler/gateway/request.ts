import { GATEWAY_PREFIX } from "../../shared/instance/names.js";
import { POD_NAME } from "../../shared/instance/parts.js";

/** The gateway's route, as request logs and metrics name it. */
export const GATEWAY_ROUTE = `${GATEWAY_PREFIX}:name/**`;

// A claimed pool member's Pod keeps the member's name: the gateway path carries it.
const INSTANCE_NAME = POD_NAME;

/** A request to the gateway, taken apart. */
export interface GatewayRequest {
  /** The instance's name (not yet known to exist). */
  name: string;
  /** The public prefix of the instance: `/api/v1/instances/<name>`. */
  prefix: string;
  /** What gptme-server is asked for: the path without the prefix, the query without `token`. */
  upstreamPath: string;
  /** A `token` query parameter (for clients that cannot set headers, such as EventSource). */
  queryToken: string | undefined;
}

export const isGatewayUrl = (url: string | undefined): boolean =>
  url?.startsWith(GATEWAY_PREFIX) ?? false;

/** Takes a gateway URL apart; undefined when it does not name an instance. */
export function parseGatewayUrl(url: string): GatewayRequest | undefined {
  if (!url.startsWith(GATEWAY_PREFIX)) return undefined;
  const queryAt = url.indexOf("?");
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? "" : url.slice(queryAt + 1);
  const rest = path.slice(GATEWAY_PREFIX.length);
  const slash = rest.indexOf("/");
  const name = slash === -1 ? rest : rest.slice(0, slash);
  if (!INSTANCE_NAME.test(name)) return undefined;
  let queryToken: string | undefined;
  // The query is kept as sent (its encoding untouched) but for every `token` parameter.
  const kept = query
    .split("&")
    .filter((part) => {
      if (part === "") return false;
      const [rawKey = "", rawValue = ""] = part.split(/=(.*)/s);
      if (decodeOr(rawKey) !== "token") return true;
      queryToken ??= decodeOr(rawValue.replace(/\+/g, " "));
      return false;
    })
    .join("&");
  const upstreamPath = (slash === -1 ? "/" : rest.slice(slash)) + (kept ? `?${kept}` : "");
  return { name, prefix: `${GATEWAY_PREFIX}${name}`, upstreamPath, queryToken };
}

// A conversation id as gptme names them; never `.` or `..`, which a server could resolve.
const EVENT_STREAM = /^\/api\/v2\/conversations\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+\/events$/;

/** Whether an upstream path (query aside) is a conversation's event stream. */
export function isEventStreamPath(upstreamPath: string): boolean {
  const queryAt = upstreamPath.indexOf("?");
  return EVENT_STREAM.test(queryAt === -1 ? upstreamPath : upstreamPath.slice(0, queryAt));
}

/**
 * A redirect from gptme-server, under the instance's public prefix. It writes absolute
 * `http://<its Host>/...` locations and knows nothing of the prefix; a location elsewhere
 * is left alone.
 */
export function rewriteLocation(
  location: string,
  prefix: string,
  upstreamOrigin: string,
  upstreamPrefix = "",
): string {
  let path: string;
  if (location.startsWith("/") && !location.startsWith("//")) path = location;
  else {
    try {
      const url = new URL(location);
      if (url.origin !== upstreamOrigin) return location;
      path = url.pathname + url.search + url.hash;
    } catch {
      return location;
    }
  }
  if (!upstreamPrefix) return prefix + path;
  // Only what lives under the upstream prefix has a public address.
  const rest = path.slice(upstreamPrefix.length);
  if (!path.startsWith(upstreamPrefix) || !/^($|[/?#])/.test(rest)) return location;
  return prefix + (rest.startsWith("/") ? rest : `/${rest}`);
}

/**
 * A cookie set by gptme-server, confined to the instance's prefix: every instance shares the
 * gateway's origin, and a cookie one instance sets must never reach another.
 */
export function rewriteCookiePath(setCookie: string, prefix: string): string {
  const attributes = setCookie.split(";");
  let found = false;
  const rewritten = attributes.map((attribute, index) => {
    const match = /^\s*path\s*=\s*(.*)$/i.exec(attribute);
    if (index === 0 || !match) return attribute;
    found = true;
    const path = match[1]?.trim() || "/";
    return ` Path=${prefix}${path.startsWith("/") ? path : `/${path}`}`;
  });
  if (!found) rewritten.push(` Path=${prefix}/`);
  return rewritten.join(";");
}

function decodeOr(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
