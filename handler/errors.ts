import { HTTPError } from "h3";

/** The stable error codes of the API (contract section 3). */
export type ErrorCode =
  | "invalid_instance_id"
  | "invalid_api_key"
  | "invalid_wait"
  | "invalid_purge"
  | "invalid_query"
  | "bad_request"
  | "missing_api_key"
  | "unknown_api_key"
  | "unknown_plan"
  | "unauthorized"
  | "admin_disabled"
  | "not_found"
  | "instance_limit"
  | "fleet_full"
  | "kubernetes_unavailable"
  | "template_not_found"
  | "pod_rejected"
  | "invalid_token"
  | "instance_starting"
  | "instance_unreachable"
  | "instance_timeout"
  | "body_too_large"
  | "invalid_credentials"
  | "identity_unavailable"
  | "invalid_code"
  | "invalid_body"
  | "public_url_missing"
  | "previews_disabled"
  | "invalid_port"
  | "preview_sign_in_required"
  | "internal_error";

export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  message: string;
  /** What gptme's web UI shows when a sign-in fails (its `hint`, else its `error`). */
  error?: string;
  hint?: string;
}

/** The fields an error may add to its body, for clients that read more than `message`. */
export type ErrorExtras = Pick<ErrorBody, "error" | "hint">;

/** An error the API answers with: its status, its code and a message a person understands. */
export function apiError(
  status: number,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
  extras?: ErrorExtras,
): HTTPError {
  return new HTTPError({ status, message, body: { code, ...extras }, headers });
}

/**
 * The JSON body (and status) of any error, safe to send: unexpected errors say nothing about
 * internals. An unhandled error is always a 500, whatever `status` it carries: h3 copies a
 * thrown object's `status` (a Kubernetes 404, say) into the HTTP answer otherwise.
 */
export function errorBody(error: HTTPError): ErrorBody {
  const { code, error: said, hint } = (error.body ?? {}) as { code?: ErrorCode } & ErrorExtras;
  if (code) {
    const extras = said === undefined ? {} : { error: said, hint };
    return { statusCode: error.status, code, message: error.message, ...extras };
  }
  if (error.unhandled) return internalError;
  if (error.status === 404)
    return { statusCode: 404, code: "not_found", message: "No such route." };
  if (error.status >= 400 && error.status < 500) {
    // h3's own client errors (a malformed URL, say) carry generic, path-free messages.
    return { statusCode: error.status, code: "bad_request", message: "The request is malformed." };
  }
  return internalError;
}

const internalError: ErrorBody = {
  statusCode: 500,
  code: "internal_error",
  message: "Internal error; it has been logged.",
};
