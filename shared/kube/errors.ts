import { ApiException } from "@kubernetes/client-node";
import { CallTimeoutError } from "./transport.js";

/** The API server could not be reached, timed out, or said it is overloaded. */
export class KubeUnavailableError extends Error {
  override name = "KubeUnavailableError";
}

/** The API server refused a call with a status the caller did not expect. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Maps what client-node throws onto the two errors callers handle. */
export function toKubeError(error: unknown): KubeUnavailableError | KubeApiError {
  if (error instanceof KubeApiError || error instanceof KubeUnavailableError) return error;
  if (error instanceof ApiException) {
    const status = parseStatus(error.body);
    const code = error.code;
    // 429 (API priority and fairness) and 5xx from the server or a proxy in front of it
    // mean "try again later", the same as an unreachable server.
    if (code === 429 || code === 502 || code === 503 || code === 504) {
      return new KubeUnavailableError(`the API server answered ${code}`);
    }
    return new KubeApiError(
      code,
      status.reason ?? "Unknown",
      status.message ?? `API status ${code}`,
    );
  }
  if (error instanceof CallTimeoutError) {
    return new KubeUnavailableError("the API server did not answer in time");
  }
  const name = (error as { name?: string } | undefined)?.name;
  const code = (error as { code?: string } | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+/.test(code)) {
    return new KubeUnavailableError(
      `the API server cannot be reached (${code ?? "network error"})`,
    );
  }
  return new KubeUnavailableError(`the API server call failed (${name ?? "unknown error"})`);
}

function parseStatus(body: unknown): { reason?: string; message?: string } {
  try {
    const status = typeof body === "string" ? JSON.parse(body) : body;
    return { reason: status?.reason, message: status?.message };
  } catch {
    return {};
  }
}

function absentOn(status: number) {
  return (error: unknown): undefined => {
    if (error instanceof KubeApiError && error.status === status) return undefined;
    throw error;
  };
}

export const absentOn404 = absentOn(404);
export const absentOn409 = absentOn(409);
