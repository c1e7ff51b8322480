/** The stable error codes of the API: what a client may branch on. */
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

/** What an error may add to its body, for clients that read more than `message`. */
export interface ErrorExtras {
  /** What gptme's web UI shows when a sign-in fails (its `hint`, else its `error`). */
  error?: string;
  hint?: string;
}

/**
 * A refusal the domain decided on: its code and a message a person understands. Domain code
 * throws it and knows nothing of HTTP; the table in answer.ts gives each code its status and
 * headers at the edge.
 */
export class FleetError extends Error {
  override name = "FleetError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extras: ErrorExtras = {},
  ) {
    super(message);
  }
}
