import type { V1ConfigMap } from "@kubernetes/client-node";
import { type CreateResult, type DeleteResult, deleteOptions, type KubeCalls } from "./calls.js";
import { absentOn404, absentOn409, KubeApiError } from "./errors.js";

/**
 * ConfigMaps read and written whole by name (the reaper's stats, pool aliases, instance
 * slots). Sign-in codes, also
 * ConfigMaps, have their own module (signin-codes.ts): they are made, read and removed as codes.
 */
export class ConfigMaps {
  constructor(private readonly api: KubeCalls) {}

  /** `fromCache`: from the API server's watch cache (resourceVersion=0), as Pods.get. */
  async get(name: string, { fromCache = false } = {}): Promise<V1ConfigMap | undefined> {
    return this.api
      .read<V1ConfigMap>("configmaps", this.api.corePath("configmaps", name), fromCache)
      .catch(absentOn404);
  }

  /** Deletes it only if it is the one read (`uid`): "conflict" when it was replaced since. */
  async delete(name: string, preconditions: { uid: string }): Promise<DeleteResult> {
    return this.api.delete(
      "configmaps",
      this.api.corePath("configmaps", name),
      deleteOptions(preconditions),
    );
  }

  /** Creates a ConfigMap; `created: false` when one of that name exists (409). */
  async create(body: V1ConfigMap): Promise<CreateResult<V1ConfigMap>> {
    const made = await this.api
      .create<V1ConfigMap>("configmaps", this.api.corePath("configmaps"), body)
      .catch(absentOn409);
    return made === undefined ? { created: false } : { created: true, object: made };
  }

  /** Merge-patches it; undefined when it is gone. */
  async patch(name: string, patch: object): Promise<V1ConfigMap | undefined> {
    return this.api
      .patch<V1ConfigMap>("configmaps", this.api.corePath("configmaps", name), patch)
      .catch(absentOn404);
  }

  /**
   * Sets `data` keys only if the ConfigMap is unchanged since it was read at
   * `resourceVersion`: "conflict" when someone wrote in between, "absent" when it is gone.
   * Keys left out of `data` stay as they are (a merge patch).
   */
  async patchDataIfUnchanged(
    name: string,
    resourceVersion: string,
    data: Record<string, string>,
  ): Promise<"patched" | "absent" | "conflict"> {
    try {
      await this.api.patch("configmaps", this.api.corePath("configmaps", name), {
        metadata: { resourceVersion },
        data,
      });
      return "patched";
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return "absent";
      if (error instanceof KubeApiError && error.status === 409) return "conflict";
      throw error;
    }
  }
}
