import type { IncomingHttpHeaders } from "node:http";

/**
 * The pod's answer as a preview host sends it on.
 *
 * - No cookie is set or cleared from inside an instance: the fleet's session lives on this host.
 * - gptme-server sandboxes HTML (`Content-Security-Policy: sandbox` without `allow-same-origin`)
 *   because on its own origin a preview would share the API's origin and cookies. A preview
 *   host is an origin of its own, holding nothing but the app and an HttpOnly session cookie:
 *   there the opaque origin only breaks the app (measured in Chromium: every script, style,
 *   image and fetch of the page then goes out cross-site without the SameSite=Lax session and
 *   is refused). So the sandbox is kept, with `allow-same-origin` added: the page gets its own
 *   host's origin, and every other restriction gptme-server set stays.
 */
export function rewritePreviewHeaders(headers: IncomingHttpHeaders): void {
  delete headers["set-cookie"];
  delete headers["set-cookie2"];
  delete headers["clear-site-data"];
  const policy = headers["content-security-policy"];
  if (typeof policy === "string") headers["content-security-policy"] = withOwnOrigin(policy);
}

/** A CSP whose sandbox directive (if any) lets the document keep its origin. */
export function withOwnOrigin(policy: string): string {
  return policy
    .split(";")
    .map((directive) => {
      const tokens = directive.trim().split(/\s+/);
      if (tokens[0]?.toLowerCase() !== "sandbox") return directive;
      if (tokens.some((t) => t.toLowerCase() === "allow-same-origin")) return directive;
      return `${directive.trimEnd()} allow-same-origin`;
    })
    .join(";");
}
