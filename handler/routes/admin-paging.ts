import type { V1Pod } from "@kubernetes/client-node";
import type { H3Event } from "h3";
import { getQuery } from "h3";
import pLimit from "p-limit";
import { z } from "zod";
import { LABEL_CLIENT, LABEL_PLAN, MANAGED_SELECTOR } from "../../shared/instance/clientpod.js";
import type { ListOptions } from "../../shared/kube/calls.js";
import type { Kube } from "../../shared/kube/client.js";
import { KubeApiError } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";

// What the admin lists share: their query, a page of the API server's list, and the Pods of
// a page read by name.

/** The query of a paged admin list: `?client=&limit=&continue=`. */
export const pageQuery = z.object({
  client: z
    .string()
    .regex(/^[0-9a-f]{16,64}$/, "client is a client id: 16 to 64 lowercase hex digits")
    .optional(),
  limit: z
    .string()
    .regex(/^\d+$/, "limit is a whole number from 1 to 500")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 500, "limit is a whole number from 1 to 500")
    .optional(),
  continue: z.string().min(1).max(4096).optional(),
});

/** Items per page when the query names no limit. */
const DEFAULT_PAGE_SIZE = 100;

/**
 * The list options of one page the admin asked for: the fleet's objects, or one client's,
 * or one plan's (a label selector: the API server filters, so pages stay full).
 */
export function pageOptions(query: z.infer<typeof pageQuery>, plan?: string): ListOptions {
  return {
    labelSelector: [
      MANAGED_SELECTOR,
      ...(query.client ? [`${LABEL_CLIENT}=${query.client}`] : []),
      ...(plan ? [`${LABEL_PLAN}=${plan}`] : []),
    ].join(","),
    limit: query.limit ?? DEFAULT_PAGE_SIZE,
    continue: query.continue,
  };
}

/** The query, or 400 invalid_query naming what is wrong with it. */
export function parseQuery<S extends z.ZodType>(schema: S, event: H3Event): z.infer<S> {
  const parsed = schema.safeParse(getQuery(event));
  if (!parsed.success) {
    throw new FleetError("invalid_query", parsed.error.issues[0]?.message ?? "invalid query");
  }
  return parsed.data;
}

/** Reads in flight while an admin page reads its Pods. */
const POD_READS = 16;

/**
 * Pods by name, each read from the API server's cache: a page's worth of reads, at the same
 * cost in any fleet (a label query for the page's clients walked every Pod of the namespace).
 * Missing ones are left out.
 */
export async function podsByName(kube: Kube, names: Iterable<string>): Promise<Map<string, V1Pod>> {
  const limit = pLimit(POD_READS);
  const unique = [...new Set(names)];
  const pods = await Promise.all(
    unique.map((name) => limit(() => kube.pods.get(name, { fromCache: true }))),
  );
  return new Map(
    pods.filter((pod) => pod !== undefined).map((pod) => [pod.metadata?.name ?? "", pod]),
  );
}

/** A continue token the API server refuses (malformed, or expired after a few minutes). */
export function expiredToken(error: unknown): never {
  if (error instanceof KubeApiError && (error.status === 400 || error.status === 410)) {
    throw new FleetError(
      "invalid_query",
      "The continue token is invalid or has expired; list again without it.",
    );
  }
  throw error;
}
