import { previewHostname } from "./host.js";

/**
 * The query parameter of a preview sign-in link. Only the fleet reads it: a request that
 * carries it is answered with a cookie and a redirect without it, and never reaches the pod.
 */
export const CODE_PARAMETER = "gptme_preview_code";

/** The sign-in link to one preview: the preview host's root, with the code. */
export function signInLink(
  code: string,
  port: number,
  name: string,
  domain: string,
  publicUrl: string | undefined,
): string {
  // The preview host is reached the way the fleet is: its scheme and port (Traefik's, say).
  const base = publicUrl ? new URL(publicUrl) : undefined;
  const scheme = base?.protocol ?? "http:";
  const listening = base?.port ? `:${base.port}` : "";
  return `${scheme}//${previewHostname(port, name, domain)}${listening}/?${CODE_PARAMETER}=${code}`;
}

/**
 * A request URL taken apart: the sign-in code it carries (undefined without one) and the URL
 * without it, the rest of the query kept as sent.
 */
export function takeCode(url: string): { code: string | undefined; rest: string } {
  const queryAt = url.indexOf("?");
  if (queryAt === -1) return { code: undefined, rest: url };
  let code: string | undefined;
  const kept = url
    .slice(queryAt + 1)
    .split("&")
    .filter((part) => {
      const [key = "", value = ""] = part.split(/=(.*)/s);
      if (key !== CODE_PARAMETER) return part !== "";
      code ??= value;
      return false;
    });
  const path = url.slice(0, queryAt);
  return { code, rest: kept.length ? `${path}?${kept.join("&")}` : path };
}
