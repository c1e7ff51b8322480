import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import {
  type CreateResult,
  type DeletePreconditions,
  type DeleteResult,
  deleteOptions,
  type KubeCalls,
  type ListOptions,
  mergePatch,
  type Page,
} from "./calls.js";
import { absentOn404, absentOn409 } from "./errors.js";

/** PersistentVolumeClaims: the instances' workspaces (shared/instance/workspace.ts). */
export class PersistentVolumeClaims {
  constructor(private readonly api: KubeCalls) {}

  /** `fromCache`: from the API server's watch cache (resourceVersion=0), as Pods.get. */
  async get(
    name: string,
    { fromCache = false } = {},
  ): Promise<V1PersistentVolumeClaim | undefined> {
    const path = `/api/v1/namespaces/${this.api.namespace}/persistentvolumeclaims/${encodeURIComponent(name)}`;
    return this.api
      .call("get", "persistentvolumeclaims", () =>
        fromCache
          ? this.api.getJson<V1PersistentVolumeClaim>(`${path}?resourceVersion=0`)
          : this.api.core.readNamespacedPersistentVolumeClaim({
              name,
              namespace: this.api.namespace,
            }),
      )
      .catch(absentOn404);
  }

  async create(body: V1PersistentVolumeClaim): Promise<CreateResult<V1PersistentVolumeClaim>> {
    const claim = await this.api
      .call("create", "persistentvolumeclaims", () =>
        this.api.core.createNamespacedPersistentVolumeClaim({
          namespace: this.api.namespace,
          body,
        }),
      )
      .catch(absentOn409);
    return claim === undefined ? { created: false } : { created: true, object: claim };
  }

  /** Merge-patches a claim (annotations); undefined when it is gone. */
  async patch(name: string, patch: object): Promise<V1PersistentVolumeClaim | undefined> {
    return this.api
      .call("patch", "persistentvolumeclaims", () =>
        this.api.core.patchNamespacedPersistentVolumeClaim(
          { name, namespace: this.api.namespace, body: patch },
          mergePatch,
        ),
      )
      .catch(absentOn404);
  }

  async delete(name: string, preconditions?: DeletePreconditions): Promise<DeleteResult> {
    return this.api.deleteResult(
      this.api.call("delete", "persistentvolumeclaims", () =>
        this.api.core.deleteNamespacedPersistentVolumeClaim({
          name,
          namespace: this.api.namespace,
          body: deleteOptions(preconditions),
        }),
      ),
    );
  }

  /** One page of claims as plain JSON (timestamps stay strings), like Pods.list. */
  async list(options: ListOptions = {}): Promise<Page<V1PersistentVolumeClaim>> {
    return this.api.listJson<V1PersistentVolumeClaim>("persistentvolumeclaims", options);
  }
}
