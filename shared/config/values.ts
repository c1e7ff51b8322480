import { z } from "zod";
import { parseByteSize } from "./byte-size.js";
import { parseDurationMs } from "./duration.js";

// The kinds of value the configuration takes, as zod schemas over environment strings.

const QUANTITY = /^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

export const duration = (opts: { min?: number; max?: number } = {}) =>
  z.string().transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: "expected a duration such as 90, 90s, 15m, 2h or 1h30m",
      });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: "custom", message: `must be at least ${opts.min / 1000}s` });
      return z.NEVER;
    }
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: "custom", message: `must be at most ${opts.max / 1000}s` });
      return z.NEVER;
    }
    return ms;
  });

export const positiveInt = z
  .string()
  .regex(/^\d+$/, "expected a whole number")
  .transform(Number)
  .refine((n) => n >= 1 && Number.isSafeInteger(n), "must be at least 1");

export const wholeNumber = z
  .string()
  .regex(/^\d+$/, "expected a whole number (0 or more)")
  .transform(Number)
  .refine((n) => n <= 1000, "must be at most 1000");

export const quantity = z
  .string()
  .regex(QUANTITY, "expected a Kubernetes quantity such as 1, 500m or 1Gi");

/** Comma-separated browser origins (scheme, host and port only). */
export const originList = z.string().transform((text, ctx) => {
  const origins = text
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  const bad = origins.find((o) => originOf(o) !== o);
  if (bad !== undefined) {
    ctx.addIssue({
      code: "custom",
      message:
        "expected comma-separated origins such as https://app.example.com or tauri://localhost (scheme, host and port only)",
    });
    return z.NEVER;
  }
  return origins;
});

/** A size in bytes, written as Kubernetes writes quantities. */
export const byteSize = z.string().transform((text, ctx) => {
  const bytes = parseByteSize(text);
  if (bytes === undefined) {
    ctx.addIssue({ code: "custom", message: "expected a size such as 32Mi, 500Ki or 1048576" });
    return z.NEVER;
  }
  return bytes;
});

/**
 * An app's own scheme, as desktop apps send it in `Origin` (gptme's Tauri app:
 * `tauri://localhost`): a scheme and a host, nothing else.
 */
const APP_ORIGIN = /^(?!https?:)[a-z][a-z0-9+.-]*:\/\/[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/;

/**
 * The origin (scheme://host[:port]) of a URL, or undefined when it is neither an http(s)
 * URL nor an app's origin.
 */
function originOf(text: string): string | undefined {
  if (APP_ORIGIN.test(text)) return text;
  try {
    const url = new URL(text);
    return /^https?:$/.test(url.protocol) ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
