import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * A JSON-lines logger. Secrets never reach a log line by design (no URLs, headers or keys
 * are logged); the redaction list is a second line of defence against a careless field.
 */
export function createLogger(
  options: { level: string; name: string },
  destination?: DestinationStream,
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
