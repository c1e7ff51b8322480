import {
  type ClientPod,
  type ClientPodStatus,
  clientPodSchema,
  GROUP,
  PLURAL,
  VERSION,
} from "../instance/clientpod.js";
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
import { absentOn404, absentOn409, KubeApiError } from "./errors.js";

/** ClientPods: the instances, the truth every request and the reaper read. */
export class ClientPods {
  constructor(private readonly api: KubeCalls) {}

  private get crd() {
    return { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.api.namespace };
  }

  /**
   * `fromCache` reads the API server's watch cache (resourceVersion=0), as the Pods' get
   * does: for request paths, whose cost must not grow with the fleet or reach etcd; a
   * moment-old answer is what a moment-earlier request would have got.
   */
  async get(name: string, { fromCache = false } = {}): Promise<ClientPod | undefined> {
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${this.api.namespace}/${PLURAL}/${encodeURIComponent(name)}`;
    const raw = await this.api
      .call("get", "clientpods", () =>
        this.api.getJson<unknown>(fromCache ? `${path}?resourceVersion=0` : path),
      )
      .catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  async create(body: object): Promise<CreateResult<ClientPod>> {
    const raw = await this.api
      .call("create", "clientpods", () =>
        this.api.custom.createNamespacedCustomObject({ ...this.crd, body }),
      )
      .catch(absentOn409);
    return raw === undefined
      ? { created: false }
      : { created: true, object: clientPodSchema.parse(raw) };
  }

  /** Merge-patches the ClientPod itself (metadata); undefined when it is gone. */
  async patch(name: string, patch: object): Promise<ClientPod | undefined> {
    const raw = await this.api
      .call("patch", "clientpods", () =>
        this.api.custom.patchNamespacedCustomObject({ ...this.crd, name, body: patch }, mergePatch),
      )
      .catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  /** Merge-patches the status subresource; undefined when the ClientPod is gone. */
  async patchStatus(name: string, status: ClientPodStatus): Promise<ClientPod | undefined> {
    const raw = await this.api
      .call("patch", "clientpods", () =>
        this.api.custom.patchNamespacedCustomObjectStatus(
          { ...this.crd, name, body: { status } },
          mergePatch,
        ),
      )
      .catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  /**
   * Merge-patches the status subresource only if the ClientPod is unchanged since it was
   * read at `resourceVersion` (the API server answers 409 otherwise): the reaper's write
   * never lands on an instance a client touched in between.
   */
  async patchStatusIfUnchanged(
    name: string,
    resourceVersion: string,
    status: ClientPodStatus,
  ): Promise<"patched" | "absent" | "conflict"> {
    try {
      await this.api.call("patch", "clientpods", () =>
        this.api.custom.patchNamespacedCustomObjectStatus(
          { ...this.crd, name, body: { metadata: { resourceVersion }, status } },
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

  /**
   * Deletes a ClientPod; its Pod follows through the garbage collector. With preconditions,
   * an object that changed since it was read is left alone ("conflict").
   */
  async delete(name: string, preconditions?: DeletePreconditions): Promise<DeleteResult> {
    return this.api.deleteResult(
      this.api.call("delete", "clientpods", () =>
        this.api.custom.deleteNamespacedCustomObject({
          ...this.crd,
          name,
          propagationPolicy: "Background",
          body: deleteOptions(preconditions),
        }),
      ),
    );
  }

  /** One page of ClientPods; items that fail the schema are dropped and reported. */
  async list(options: ListOptions = {}): Promise<Page<ClientPod> & { invalid: string[] }> {
    const raw = (await this.api.call("list", "clientpods", () =>
      this.api.custom.listNamespacedCustomObject({
        ...this.crd,
        labelSelector: options.labelSelector,
        limit: options.limit,
        _continue: options.continue,
        resourceVersion: options.fromCache ? "0" : undefined,
      }),
    )) as { items: unknown[]; metadata?: { continue?: string; remainingItemCount?: number } };
    const items: ClientPod[] = [];
    const invalid: string[] = [];
    for (const item of raw.items) {
      const parsed = clientPodSchema.safeParse(item);
      if (parsed.success) items.push(parsed.data);
      else invalid.push(String((item as { metadata?: { name?: string } }).metadata?.name));
    }
    return {
      items,
      invalid,
      continue: raw.metadata?.continue || undefined,
      remaining: raw.metadata?.remainingItemCount,
    };
  }

  /** How many ClientPods the namespace holds, counted by the API server, not by listing them all. */
  async count(): Promise<number> {
    let page = await this.list({ limit: 1 });
    let count = page.items.length + page.invalid.length;
    if (page.remaining !== undefined || !page.continue) return count + (page.remaining ?? 0);
    // remainingItemCount is an estimate the server may omit: count page by page then.
    while (page.continue) {
      page = await this.list({ limit: 500, continue: page.continue });
      count += page.items.length + page.invalid.length;
    }
    return count;
  }
}
