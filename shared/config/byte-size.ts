const UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
};

/**
 * Parses a size in bytes written as Kubernetes writes quantities ("32Mi", "500k", "1048576"),
 * so that one notation serves the manifests and the configuration. Undefined for anything else.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)(k|K|M|G|Ki|Mi|Gi)?$/.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * (UNITS[match[2] ?? ""] ?? Number.NaN);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}
