/**
 * CORS for browsers calling the client routes and the gateway from another origin (gptme's
 * web UI, say). The allowed origin is echoed exactly, never `*`, with credentials allowed:
 * the UI opens its event stream with `withCredentials`, which a `*` silently breaks.
 */

const ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
const ALLOWED_HEADERS =
  "authorization, content-type, x-api-key, accept, cache-control, last-event-id";
const PREFLIGHT_MAX_AGE_SECONDS = "600";

export type HeaderMap = Record<string, string>;

/** Whether a request is a CORS preflight (answered without credentials). */
export function isPreflight(method: string | undefined, headers: Headers | HeaderMap): boolean {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name]);
  return (
    method === "OPTIONS" && Boolean(get("origin")) && Boolean(get("access-control-request-method"))
  );
}

/** The headers every answer to `origin` carries; empty for a missing or foreign origin. */
export function corsHeaders(
  origin: string | undefined | null,
  allowed: readonly string[],
): HeaderMap {
  if (allowed.length === 0) return {};
  // Caches must not hand one origin's answer to another.
  const vary = { vary: "Origin" };
  if (!origin || !allowed.includes(origin)) return vary;
  return {
    ...vary,
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
  };
}

/** The headers of the answer to a preflight from `origin`. */
export function preflightHeaders(
  origin: string | undefined | null,
  allowed: readonly string[],
): HeaderMap {
  const headers = corsHeaders(origin, allowed);
  if (!headers["access-control-allow-origin"]) return headers;
  return {
    ...headers,
    "access-control-allow-methods": ALLOWED_METHODS,
    "access-control-allow-headers": ALLOWED_HEADERS,
    "access-control-max-age": PREFLIGHT_MAX_AGE_SECONDS,
  };
}
