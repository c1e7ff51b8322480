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
  type Page,
} from "./calls.js";
import { absentOn404, absentOn409, KubeApiError } from "./errors.js";

/** ClientPods: the instances, the truth every request and the reaper read. */
export class ClientPods {
  constructor(private readonly api: KubeCalls) {}

  /** The ClientPods' collection, or one of them by name, or its status subresource. */
  private path(name?: string, subresource?: "status"): string {
    const collection = `/apis/${GROUP}/${VERSION}/namespaces/${this.api.namespace}/${PLURAL}`;
    if (name === undefined) return collection;
    const one = `${collection}/${encodeURIComponent(name)}`;
    return subresource ? `${one}/${subresource}` : one;
  }

  /**
   * `fromCache` reads the API server's watch cache (resourceVersion=0), as the Pods' get
   * does: for request paths, whose cost must not grow with the fleet or reach etcd; a
   * moment-old answer is what a moment-earlier request would have got.
   */
  async get(name: string, { fromCache = false } = {}): Promise<ClientPod | undefined> {
    const raw = await this.api
      .read<unknown>("clientpods", this.path(name), fromCache)
      .catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  async create(body: object): Promise<CreateResult<ClientPod>> {
    const raw = await this.api.create<unknown>("clientpods", this.path(), body).catch(absentOn409);
    return raw === undefined
      ? { created: false }
      : { created: true, object: clientPodSchema.parse(raw) };
  }

  /** Merge-patches the ClientPod itself (metadata); undefined when it is gone. */
  async patch(name: string, patch: object): Promise<ClientPod | undefined> {
    const raw = await this.api
      .patch<unknown>("clientpods", this.path(name), patch)
      .catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  /** Merge-patches the status subresource; undefined when the ClientPod is gone. */
  async patchStatus(name: string, status: ClientPodStatus): Promise<ClientPod | undefined> {
    const raw = await this.api
      .patch<unknown>("clientpods", this.path(name, "status"), { status })
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
      await this.api.patch("clientpods", this.path(name, "status"), {
        metadata: { resourceVersion },
        status,
      });
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
    return this.api.delete("clientpods", this.path(name), {
      ...deleteOptions(preconditions),
      propagationPolicy: "Background",
    });
  }

  /** One page of ClientPods; items that fail the schema are dropped and reported. */
  async list(options: ListOptions = {}): Promise<Page<ClientPod> & { invalid: string[] }> {
    const page = await this.api.list<unknown>("clientpods", this.path(), options);
    const items: ClientPod[] = [];
    const invalid: string[] = [];
    for (const item of page.items) {
      const parsed = clientPodSchema.safeParse(item);
      if (parsed.success) items.push(parsed.data);
      else invalid.push(String((item as { metadata?: { name?: string } }).metadata?.name));
    }
    return { items, invalid, continue: page.continue, remaining: page.remaining };
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
