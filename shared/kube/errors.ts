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
    /**
     * For a list whose `continue` token expired (410 Expired): the token the API server offers
     * to read the rest from the latest state (an "inconsistent" continuation), if it gave one.
     */
    readonly continueToken?: string,
  ) {
    super(message);
  }
}

/** A list's `continue` token is too old to read on from (410 Gone, reason Expired). */
export const isExpiredList = (error: unknown): error is KubeApiError =>
  error instanceof KubeApiError && error.status === 410;

/** What an answer other than 2xx means: the API server's Status, as one of the two errors. */
export function kubeErrorOf(code: number, body: string): KubeUnavailableError | KubeApiError {
  // 429 (API priority and fairness) and 5xx from the server or a proxy in front of it
  // mean "try again later", the same as an unreachable server.
  if (code === 429 || code === 502 || code === 503 || code === 504) {
    return new KubeUnavailableError(`the API server answered ${code}`);
  }
  const status = parseStatus(body);
  return new KubeApiError(
    code,
    status.reason ?? "Unknown",
    status.message ?? `API status ${code}`,
    status.continue,
  );
}

/** Maps what a call throws onto the two errors callers handle. */
export function toKubeError(error: unknown): KubeUnavailableError | KubeApiError {
  if (error instanceof KubeApiError || error instanceof KubeUnavailableError) return error;
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

function parseStatus(body: string): { reason?: string; message?: string; continue?: string } {
  try {
    const status = JSON.parse(body);
    const token = status?.metadata?.continue;
    return {
      reason: status?.reason,
      message: status?.message,
      continue: typeof token === "string" && token ? token : undefined,
    };
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
