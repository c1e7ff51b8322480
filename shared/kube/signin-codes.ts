import type { V1ConfigMap } from "@kubernetes/client-node";
import { type CodeRecord, codeRecordOf } from "../tokens/signin-code.js";
import type { DeleteResult, KubeCalls, ListOptions, Page } from "./calls.js";
import { deleteOptions } from "./calls.js";
import { absentOn404, absentOn409 } from "./errors.js";

/** The one-time codes' objects (ConfigMaps; shared/signin-code.ts says why and how). */
export class CodeObjects {
  constructor(private readonly api: KubeCalls) {}

  /** Creates a code's object; false when one of that name exists (a code drawn twice). */
  async create(body: V1ConfigMap): Promise<boolean> {
    const created = await this.api
      .create<V1ConfigMap>("configmaps", this.api.corePath("configmaps"), body)
      .catch(absentOn409);
    return created !== undefined;
  }

  /**
   * The code behind an object name; undefined when absent or not a code object. `fromCache`
   * reads the API server's watch cache (resourceVersion=0): no etcd read.
   */
  async get(name: string, { fromCache = false } = {}): Promise<CodeRecord | undefined> {
    const object = await this.api
      .read<V1ConfigMap>("configmaps", this.api.corePath("configmaps", name), fromCache)
      .catch(absentOn404);
    return object === undefined ? undefined : codeRecordOf(object);
  }

  /**
   * Deletes a code's object only if it is the one read (`uid`): of any number of concurrent
   * deletes exactly one answers "deleted", the others "absent" or "conflict".
   */
  async delete(name: string, preconditions: { uid: string }): Promise<DeleteResult> {
    return this.api.delete(
      "configmaps",
      this.api.corePath("configmaps", name),
      deleteOptions(preconditions),
    );
  }

  /** One page of code objects as plain JSON, for the reaper. */
  async list(options: ListOptions): Promise<Page<V1ConfigMap>> {
    return this.api.listJson<V1ConfigMap>("configmaps", options);
  }
}
