import { KubeUnavailableError } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import { Refusal } from "../gateway/refusal.js";
import type { Target } from "../gateway/targets.js";
import { STARTING_RETRY_AFTER_SECONDS } from "../instances/instances.js";

/** The preview hosts' route, as request logs and metrics name it (never the host itself). */
export const PREVIEW_ROUTE = "preview:<port>-<name>/**";

/** A malformed host, a port out of range, an unknown instance: one answer for all. */
export const notFound = (cached = false) =>
  new Refusal(404, "not_found", "No such preview.", {}, cached);

export const signInRequired = (cached = false) =>
  new Refusal(
    401,
    "preview_sign_in_required",
    "Open this preview from your gptme client: it signs your browser in to it.",
    {},
    cached,
  );

/** Its Pod is not serving yet; `pod`: its own Pod, still starting (the request may be held). */
export const starting = (cached: boolean, pod: Target | undefined) =>
  new Refusal(
    503,
    "instance_starting",
    "The instance is not ready yet; try again in a moment.",
    { "retry-after": String(STARTING_RETRY_AFTER_SECONDS) },
    cached,
    pod,
  );

/** Any failure as a refusal: the API server unavailable, or an error that is logged. */
export function refusalOf(error: unknown, log: Logger): Refusal {
  if (error instanceof Refusal) return error;
  if (error instanceof KubeUnavailableError) {
    return new Refusal(
      503,
      "kubernetes_unavailable",
      "The Kubernetes API server is unavailable; try again shortly.",
      { "retry-after": "5" },
    );
  }
  const { name, message } = error as Error;
  log.error({ err: { name, message }, route: PREVIEW_ROUTE }, "request failed");
  return new Refusal(500, "internal_error", "Internal error; it has been logged.");
}
