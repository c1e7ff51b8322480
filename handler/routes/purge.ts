import { getQuery, type H3Event } from "h3";
import { FleetError } from "../errors/fleet-error.js";

/** The `purge` query parameter of a delete: `true` deletes the workspace too. */
export function purgeOf(event: H3Event): boolean {
  const purge = getQuery(event).purge;
  if (purge === undefined || purge === "false") return false;
  if (purge === "true") return true;
  throw new FleetError("invalid_purge", "purge is true or false.");
}
