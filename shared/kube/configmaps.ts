import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  type CreateResult,
  type DeleteResult,
  deleteOptions,
  type KubeCalls,
  mergePatch,
} from "./calls.js";
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
    const path = `/api/v1/namespaces/${this.api.namespace}/configmaps/${encodeURIComponent(name)}`;
    return this.api
      .call("get", "configmaps", () =>
        this.api.getJson<V1ConfigMap>(fromCache ? `${path}?resourceVersion=0` : path),
      )
      .catch(absentOn404);
  }

  /** Deletes it only if it is the one read (`uid`): "conflict" when it was replaced since. */
  async delete(name: string, preconditions: { uid: string }): Promise<DeleteResult> {
    return this.api.deleteResult(
      this.api.call("delete", "configmaps", () =>
        this.api.core.deleteNamespacedConfigMap({
          name,
          namespace: this.api.namespace,
          body: deleteOptions(preconditions),
        }),
      ),
    );
  }

  /** Creates a ConfigMap; `created: false` when one of that name exists (409). */
  async create(body: V1ConfigMap): Promise<CreateResult<V1ConfigMap>> {
    const made = await this.api
      .call("create", "configmaps", () =>
        this.api.core.createNamespacedConfigMap({ namespace: this.api.namespace, body }),
      )
      .catch(absentOn409);
    return made === undefined ? { created: false } : { created: true, object: made };
  }

  /** Merge-patches it; undefined when it is gone. */
  async patch(name: string, patch: object): Promise<V1ConfigMap | undefined> {
    return this.api
      .call("patch", "configmaps", () =>
        this.api.core.patchNamespacedConfigMap(
          { name, namespace: this.api.namespace, body: patch },
          mergePatch,
        ),
      )
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
      await this.api.call("patch", "configmaps", () =>
        this.api.core.patchNamespacedConfigMap(
          { name, namespace: this.api.namespace, body: { metadata: { resourceVersion }, data } },
          mergePatch,
        ),
      );
      return "patched";
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return "absent";
      if (error instanceof KubeApiError && error.status === 409) return "conflict";
      throw error;
    }
  }
}
