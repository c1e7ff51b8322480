import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import {
  type CreateResult,
  type DeletePreconditions,
  type DeleteResult,
  deleteOptions,
  type KubeCalls,
  type ListOptions,
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
    return this.api
      .read<V1PersistentVolumeClaim>(
        "persistentvolumeclaims",
        this.api.corePath("persistentvolumeclaims", name),
        fromCache,
      )
      .catch(absentOn404);
  }

  async create(body: V1PersistentVolumeClaim): Promise<CreateResult<V1PersistentVolumeClaim>> {
    const claim = await this.api
      .create<V1PersistentVolumeClaim>(
        "persistentvolumeclaims",
        this.api.corePath("persistentvolumeclaims"),
        body,
      )
      .catch(absentOn409);
    return claim === undefined ? { created: false } : { created: true, object: claim };
  }

  /** Merge-patches a claim (annotations); undefined when it is gone. */
  async patch(name: string, patch: object): Promise<V1PersistentVolumeClaim | undefined> {
    return this.api
      .patch<V1PersistentVolumeClaim>(
        "persistentvolumeclaims",
        this.api.corePath("persistentvolumeclaims", name),
        patch,
      )
      .catch(absentOn404);
  }

  async delete(name: string, preconditions?: DeletePreconditions): Promise<DeleteResult> {
    return this.api.delete(
      "persistentvolumeclaims",
      this.api.corePath("persistentvolumeclaims", name),
      deleteOptions(preconditions),
    );
  }

  /** One page of claims, like Pods.list. */
  async list(options: ListOptions = {}): Promise<Page<V1PersistentVolumeClaim>> {
    return this.api.listJson<V1PersistentVolumeClaim>("persistentvolumeclaims", options);
  }
}
