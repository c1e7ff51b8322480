import type { Writable } from "node:stream";
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Log bytes waiting for a slow reader beyond which new lines are dropped: a log reader that
 * stops reading must not grow the process without bound.
 */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Standard output as a log destination that never blocks the process, whatever its reader
 * does. pino's default destination writes from libuv's thread pool and flushes synchronously
 * at exit: with a reader that stops reading, a pool thread stays stuck in write(2) and exit
 * waits for it forever; with a reader that went away, EPIPE. Node's own stdout stream
 * writes a pipe without blocking, so exit is never held; a broken pipe only ends logging.
 */
export class LogOutput implements DestinationStream {
  private broken = false;

  constructor(private readonly out: Writable = process.stdout) {
    out.on("error", () => {
      // Nowhere left to report it: stdout was the place for logs.
      this.broken = true;
    });
  }

  write(line: string): void {
    if (this.broken || this.out.writableLength > MAX_PENDING_BYTES) return;
    this.out.write(line);
  }

  /** Resolves once every line written has reached the reader, or after `timeoutMs`. */
  flushed(timeoutMs: number): Promise<void> {
    if (this.broken || this.out.writableLength === 0 || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      // Chunks are written in order: this callback runs once the earlier ones are out.
      this.out.write("", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * A JSON-lines logger. Secrets never reach a log line by design (no URLs, headers or keys
 * are logged); the redaction list is a second line of defence against a careless field.
 */
export function createLogger(
  options: { level: string; name: string },
  destination: DestinationStream,
): Logger {
  return pino(
    {
      level: options.level,
      // "service", not pino's "name": log lines use "name" for the object they are about.
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          "apiKey",
          "*.apiKey",
          "token",
          "*.token",
          "authorization",
          "*.authorization",
          "headers",
          "*.headers",
          'req.headers["x-api-key"]',
          "req.headers.authorization",
        ],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
