import type { V1ConfigMap } from "@kubernetes/client-node";
import type { Kube } from "../shared/kube/client.js";
import type { Logger } from "../shared/log.js";
import {
  CODE_SELECTOR,
  type CodeRecord,
  codeRecordOf,
  isCodeExpired,
} from "../shared/tokens/signin-code.js";
import { PAGE_SIZE } from "./read.js";
import { retryTransient } from "./retry.js";

/** A code object to remove: its name (a hash, never the code) and the uid it was read with. */
export interface ExpiredCode {
  name: string;
  uid: string;
}

/**
 * The code objects a pass removes: expired ones, and objects under the codes' label that
 * are not readable codes (nothing can redeem them). Codes of deleted instances need no
 * pass: the garbage collector removes them with their ClientPod.
 */
export function planCodes(objects: V1ConfigMap[], now: Date): ExpiredCode[] {
  return objects.flatMap((object) => {
    const name = object.metadata?.name;
    const uid = object.metadata?.uid;
    if (!name || !uid || object.metadata?.deletionTimestamp) return [];
    const record: CodeRecord | undefined = codeRecordOf(object);
    return !record || isCodeExpired(record, now) ? [{ name, uid }] : [];
  });
}

/**
 * Removes expired codes, page by page. Each delete carries the uid read: an object of that
 * name made since is not touched. An exchange racing the delete finds the code expired anyway.
 */
export async function removeExpiredCodes(
  kube: Kube,
  { now, dryRun, log }: { now: () => Date; dryRun: boolean; log: Logger },
): Promise<{ expired: number; removed: number; failed: number }> {
  const counts = { expired: 0, removed: 0, failed: 0 };
  let token: string | undefined;
  do {
    const query = { labelSelector: CODE_SELECTOR, limit: PAGE_SIZE, continue: token };
    const page = await retryTransient(() => kube.codes.list(query));
    const expired = planCodes(page.items, now());
    counts.expired += expired.length;
    if (!dryRun) {
      const results = await Promise.allSettled(
        expired.map((code) => kube.codes.delete(code.name, { uid: code.uid })),
      );
      for (const result of results) {
        if (result.status === "rejected") counts.failed++;
        else if (result.value === "deleted") counts.removed++;
      }
    }
    token = page.continue;
  } while (token);
  log.info({ ...counts, dryRun }, "expired sign-in codes");
  return counts;
}
