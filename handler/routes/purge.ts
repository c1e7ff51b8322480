import { getQuery, type H3Event } from "h3";
import { apiError } from "../errors.js";

/** The `purge` query parameter of a delete: `true` deletes the workspace too. */
export function purgeOf(event: H3Event): boolean {
  const purge = getQuery(event).purge;
  if (purge === undefined || purge === "false") return false;
  if (purge === "true") return true;
  throw apiError(400, "invalid_purge", "purge is true or false.");
}
