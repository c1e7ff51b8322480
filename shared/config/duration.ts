import parseDuration from "parse-duration";

const BARE_SECONDS = /^\d+$/;
const DURATION = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;

/**
 * Parses the durations the configuration accepts ("90", "90s", "15m", "2h", "1h30m") into
 * milliseconds. A bare number means seconds, as in Kubernetes manifests, not the
 * milliseconds parse-duration would assume. Returns undefined for anything else.
 */
export function parseDurationMs(text: string): number | undefined {
  const value = text.trim();
  if (BARE_SECONDS.test(value)) return Number(value) * 1000;
  if (!DURATION.test(value)) return undefined;
  const ms = parseDuration(value);
  return ms === null || ms === undefined || !Number.isFinite(ms) ? undefined : Math.round(ms);
}
