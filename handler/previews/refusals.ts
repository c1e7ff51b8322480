import { Refusal } from "../gateway/refusal.js";
import type { Target } from "../gateway/targets.js";

/** The preview hosts' route, as request logs and metrics name it (never the host itself). */
export const PREVIEW_ROUTE = "preview:<port>-<name>/**";

/** A malformed host, a port out of range, an unknown instance: one answer for all. */
export const notFound = (cached = false) =>
  new Refusal("not_found", "No such preview.", { cached });

export const signInRequired = (cached = false) =>
  new Refusal(
    "preview_sign_in_required",
    "Open this preview from your gptme client: it signs your browser in to it.",
    { cached },
  );

/** Its Pod is not serving yet; `pod`: its own Pod, still starting (the request may be held). */
export const starting = (cached: boolean, pod: Target | undefined) =>
  new Refusal("instance_starting", "The instance is not ready yet; try again in a moment.", {
    cached,
    starting: pod,
  });
