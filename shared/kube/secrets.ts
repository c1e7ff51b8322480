import type { V1Secret } from "@kubernetes/client-node";
import type { CreateResult, KubeCalls } from "./calls.js";
import { absentOn404, absentOn409 } from "./errors.js";

/** Secrets: each instance's token, and the fleet's token key when no other source is set. */
export class Secrets {
  constructor(private readonly api: KubeCalls) {}

  async get(name: string): Promise<V1Secret | undefined> {
    return this.api
      .read<V1Secret>("secrets", this.api.corePath("secrets", name), false)
      .catch(absentOn404);
  }

  /** Merge-patches a Secret (its owner); undefined when it is gone. */
  async patch(name: string, patch: object): Promise<V1Secret | undefined> {
    return this.api
      .patch<V1Secret>("secrets", this.api.corePath("secrets", name), patch)
      .catch(absentOn404);
  }

  /** Creates a Secret; `created: false` when one of that name exists (409). */
  async create(body: V1Secret): Promise<CreateResult<V1Secret>> {
    const secret = await this.api
      .create<V1Secret>("secrets", this.api.corePath("secrets"), body)
      .catch(absentOn409);
    return secret === undefined ? { created: false } : { created: true, object: secret };
  }
}
