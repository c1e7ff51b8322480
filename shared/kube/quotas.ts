import type { V1ResourceQuota } from "@kubernetes/client-node";
import type { KubeCalls } from "./calls.js";

/** The hard count of one resource across the namespace's ResourceQuotas (the lowest), if any sets one. */
export type QuotaCap = number | undefined;

/** The namespace's ResourceQuotas: a handful of objects, whatever the size of the fleet. */
export class ResourceQuotas {
  constructor(private readonly api: KubeCalls) {}

  /** The lowest hard limit any quota of the namespace sets on `resource` (e.g. `count/clientpods.gptme.ai`). */
  async hardCountOf(resource: string): Promise<QuotaCap> {
    const list = await this.api.listJson<V1ResourceQuota>("resourcequotas", {});
    let cap: QuotaCap;
    for (const quota of list.items) {
      const hard = quota.spec?.hard?.[resource];
      if (hard === undefined) continue;
      const value = Number(hard);
      if (Number.isFinite(value) && (cap === undefined || value < cap)) cap = value;
    }
    return cap;
  }
}
