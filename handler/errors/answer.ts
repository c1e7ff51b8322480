import { HTTPError } from "h3";
import { KubeUnavailableError } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import { type ErrorCode, type ErrorExtras, FleetError } from "./fleet-error.js";

// The edge: every error the handler answers, from the routes, the gateway and the preview
// hosts alike, becomes its HTTP answer here and nowhere else.

export interface ErrorBody extends ErrorExtras {
  statusCode: number;
  code: ErrorCode;
  message: string;
}

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
}

/** Each code's status, and how long a client should wait before it tries again. */
const ANSWERS: Record<ErrorCode, { status: number; retryAfterSeconds?: number }> = {
  invalid_instance_id: { status: 400 },
  invalid_api_key: { status: 400 },
  invalid_wait: { status: 400 },
  invalid_purge: { status: 400 },
  invalid_query: { status: 400 },
  invalid_body: { status: 400 },
  invalid_port: { status: 400 },
  bad_request: { status: 400 },
  missing_api_key: { status: 401 },
  unauthorized: { status: 401 },
  invalid_token: { status: 401 },
  invalid_credentials: { status: 401 },
  invalid_code: { status: 401 },
  preview_sign_in_required: { status: 401 },
  unknown_api_key: { status: 403 },
  unknown_plan: { status: 403 },
  admin_disabled: { status: 403 },
  not_found: { status: 404 },
  previews_disabled: { status: 404 },
  body_too_large: { status: 413 },
  instance_limit: { status: 429 },
  template_not_found: { status: 500 },
  pod_rejected: { status: 500 },
  public_url_missing: { status: 500 },
  internal_error: { status: 500 },
  instance_unreachable: { status: 502 },
  fleet_full: { status: 503, retryAfterSeconds: 30 },
  kubernetes_unavailable: { status: 503, retryAfterSeconds: 5 },
  identity_unavailable: { status: 503, retryAfterSeconds: 5 },
  instance_starting: { status: 503, retryAfterSeconds: 2 },
  instance_timeout: { status: 504 },
};

/** The status a code is answered with. */
export const statusOf = (code: ErrorCode): number => ANSWERS[code].status;

/** Seconds a client is asked to wait before it asks again, for codes that say "later". */
export const retryAfterOf = (code: ErrorCode): number | undefined =>
  ANSWERS[code].retryAfterSeconds;

/** The answer to a FleetError: the table's status and headers, the error's own words. */
export function answerOf(error: FleetError): ErrorAnswer {
  const { status, retryAfterSeconds } = ANSWERS[error.code];
  const headers: Record<string, string> =
    retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) };
  const body: ErrorBody = { statusCode: status, code: error.code, message: error.message };
  if (error.extras.error !== undefined) body.error = error.extras.error;
  if (error.extras.hint !== undefined) body.hint = error.extras.hint;
  return { status, headers, body };
}

const kubernetesUnavailable = () =>
  new FleetError(
    "kubernetes_unavailable",
    "The Kubernetes API server is unavailable; try again shortly.",
  );
const internalError = () => new FleetError("internal_error", "Internal error; it has been logged.");

/**
 * What the client is told of any error, safe to send: unexpected errors say nothing about
 * internals. h3 hands its handlers' errors over wrapped in an HTTPError (the thrown one is
 * its `cause`); an unhandled error is always a 500, whatever `status` it carries (a
 * Kubernetes 404 for a missing CRD is no missing route).
 */
export function fleetErrorOf(error: unknown): FleetError {
  const thrown = causeOf(error);
  if (thrown instanceof FleetError) return thrown;
  if (thrown instanceof KubeUnavailableError) return kubernetesUnavailable();
  if (thrown instanceof HTTPError && !thrown.unhandled) {
    // h3's own answers (an unknown route, a malformed URL) carry generic, path-free words.
    if (thrown.status === 404) return new FleetError("not_found", "No such route.");
    if (thrown.status >= 400 && thrown.status < 500) {
      return new FleetError("bad_request", "The request is malformed.");
    }
  }
  return internalError();
}

/**
 * The answer to any error, logged once when it is the fleet's fault (5xx) with its cause:
 * an internal error with its stack, any other with what the domain said (a Kubernetes
 * outage says why: unreachable, overloaded, a quota not counted yet). Only messages and
 * stacks are logged: error objects can carry request data (URLs, headers).
 */
export function answerError(error: unknown, log: Logger, route: string): ErrorAnswer {
  const fleetError = fleetErrorOf(error);
  const answer = answerOf(fleetError);
  if (answer.status >= 500) {
    const cause = causeOf(error) as Error | undefined;
    const err = { name: cause?.name, message: cause?.message };
    if (fleetError.code === "internal_error") {
      log.error({ err: { ...err, stack: cause?.stack }, route }, "request failed");
    } else {
      log.warn({ code: fleetError.code, err, route }, "request refused");
    }
  }
  return answer;
}

/** What a handler threw, out of h3's wrapping. */
const causeOf = (error: unknown): unknown =>
  error instanceof HTTPError && error.cause instanceof Error ? error.cause : error;
