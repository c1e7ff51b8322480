import { FleetError } from "../errors/fleet-error.js";

/** The preview hosts' route, as request logs and metrics name it (never the host itself). */
export const PREVIEW_ROUTE = "preview:<port>-<name>/**";

/** A malformed host, a port out of range, an unknown instance: one answer for all. */
export const notFound = () => new FleetError("not_found", "No such preview.");

export const signInRequired = () =>
  new FleetError(
    "preview_sign_in_required",
    "Open this preview from your gptme client: it signs your browser in to it.",
  );

/** Its Pod is not serving (and was not by the end of the hold). */
export const starting = () =>
  new FleetError("instance_starting", "The instance is not ready yet; try again in a moment.");
