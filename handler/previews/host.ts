import { INSTANCE_NAME_PREFIX } from "../../shared/instance/names.js";

/** The app port a preview may name: gptme-server proxies 1024-65535 (its own ports aside). */
export const MIN_PREVIEW_PORT = 1024;
export const MAX_PREVIEW_PORT = 65535;

/** What a preview host names: an app port inside one instance. */
export interface PreviewTarget {
  port: number;
  /** The instance's name (not yet known to exist). */
  name: string;
  /** The host without its port, lowercase: what a session is bound to. */
  hostname: string;
}

// A port without leading zeros (one spelling per host, so one cookie per preview), then the
// instance's name: the fleet's prefix and 16 hex digits.
const PREVIEW_LABEL = new RegExp(`^([1-9][0-9]{3,4})-(${INSTANCE_NAME_PREFIX}[0-9a-f]{16})$`);

/** Whether a port may be previewed. */
export const isPreviewPort = (port: number): boolean =>
  Number.isInteger(port) && port >= MIN_PREVIEW_PORT && port <= MAX_PREVIEW_PORT;

/**
 * Takes a Host header apart: `<port>-<instance name>.<domain>[:<listening port>]`. Undefined
 * for anything else (another domain, a malformed label, a port out of range): one answer for
 * all, so a host reveals nothing before it reaches an instance.
 */
export function parsePreviewHost(
  host: string | undefined,
  domain: string,
): PreviewTarget | undefined {
  if (!host) return undefined;
  const hostname = hostnameOf(host);
  const suffix = `.${domain}`;
  if (!hostname.endsWith(suffix)) return undefined;
  const match = PREVIEW_LABEL.exec(hostname.slice(0, -suffix.length));
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[1]);
  if (!isPreviewPort(port)) return undefined;
  return { port, name: match[2], hostname };
}

/** A Host header's name: without its port or a trailing dot, lowercase. */
export const hostnameOf = (host: string): string =>
  host
    .replace(/:\d{1,5}$/, "")
    .replace(/\.$/, "")
    .toLowerCase();

/** Whether a Host header names a host under `domain` (a preview's, or a malformed one). */
export const isUnderDomain = (host: string | undefined, domain: string): boolean =>
  hostnameOf(host ?? "").endsWith(`.${domain}`);

/** The host of one instance's preview of `port`. */
export const previewHostname = (port: number, name: string, domain: string): string =>
  `${port}-${name}.${domain}`;
