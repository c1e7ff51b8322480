import pRetry from "p-retry";
import { KubeUnavailableError } from "../shared/kube/client.js";

/** Retries of a call that failed for a transient reason: unreachable, or overloaded (429, 5xx). */
export const TRANSIENT_RETRIES = 3;

/**
 * A call to the API server retried (200 ms, then 400, then 800) while it fails for a
 * transient reason, so that one overloaded moment (API priority and fairness answering 429)
 * does not end a whole pass; anything else fails at once.
 */
export function retryTransient<T>(call: () => Promise<T>): Promise<T> {
  return pRetry(call, {
    retries: TRANSIENT_RETRIES,
    minTimeout: 200,
    shouldRetry: ({ error }) => error instanceof KubeUnavailableError,
  });
}
