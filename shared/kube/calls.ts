import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  createConfiguration,
  type KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
  type V1DeleteOptions,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import { KubeApiError, type KubeUnavailableError, toKubeError } from "./errors.js";
import { KubeTransport } from "./transport.js";

export type Verb = "get" | "list" | "create" | "patch" | "delete" | "watch";
export type Resource =
  | "clientpods"
  | "pods"
  | "podtemplates"
  | "secrets"
  | "persistentvolumeclaims"
  | "configmaps"
  | "resourcequotas";

/** Observes every API call: metrics count them, tests assert how many a request makes. */
export interface KubeObserver {
  call?(verb: Verb, resource: Resource): void;
  error?(verb: Verb, resource: Resource, error: KubeUnavailableError | KubeApiError): void;
}

export interface Page<T> {
  items: T[];
  /** Token for the next page; undefined on the last one. */
  continue: string | undefined;
  /** How many items follow this page, when the API server can tell (no selector). */
  remaining: number | undefined;
}

export interface ListOptions {
  labelSelector?: string;
  limit?: number;
  continue?: string;
  /** From the API server's watch cache (resourceVersion=0): moments old, and no etcd read. */
  fromCache?: boolean;
}

/** Preconditions for a delete: it fails with "conflict" when the object changed since it was read. */
export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
}

export type DeleteResult = "deleted" | "absent" | "conflict";

export type CreateResult<T> = { created: true; object: T } | { created: false };

export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
export const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);

/**
 * What every resource module shares: the generated clients over the fleet's transport, the
 * namespace, and the one place where calls are observed and their errors mapped. Expected
 * statuses are left to the caller (404 = absent, 409 = exists or changed); anything else is
 * a KubeApiError, and a network failure or timeout a KubeUnavailableError.
 */
export class KubeCalls {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly transport: KubeTransport;

  constructor(
    readonly kc: KubeConfig,
    readonly namespace: string,
    private readonly observer: KubeObserver,
    timeoutMs: number,
  ) {
    this.transport = new KubeTransport(kc, timeoutMs);
    const configuration = createConfiguration({
      baseServer: new ServerConfiguration(this.transport.server, {}),
      authMethods: { default: this.transport },
      httpApi: wrapHttpLibrary(this.transport),
    });
    this.core = new CoreV1Api(configuration);
    this.custom = new CustomObjectsApi(configuration);
  }

  /** Counts a call that does not go through `call` (a watch). */
  observe(verb: Verb, resource: Resource): void {
    this.observer.call?.(verb, resource);
  }

  async call<T>(verb: Verb, resource: Resource, fn: () => Promise<T>): Promise<T> {
    this.observer.call?.(verb, resource);
    try {
      return await fn();
    } catch (error) {
      const mapped = toKubeError(error);
      // 404 and 409 are answers, not failures: callers decide what they mean.
      if (!(mapped instanceof KubeApiError && (mapped.status === 404 || mapped.status === 409))) {
        this.observer.error?.(verb, resource, mapped);
      }
      throw mapped;
    }
  }

  /** A GET answered as plain JSON, without client-node's conversion into model objects. */
  async getJson<T>(path: string): Promise<T> {
    const response = await this.transport.get(path);
    if (response.status !== 200) {
      throw new ApiException(response.status, "GET failed", response.text, response.headers);
    }
    return JSON.parse(response.text) as T;
  }

  /** One page of a namespaced core resource as plain JSON (timestamps stay strings). */
  async listJson<T>(resource: Resource, options: ListOptions): Promise<Page<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.continue) query.set("continue", options.continue);
    if (options.fromCache) query.set("resourceVersion", "0");
    const list = await this.call("list", resource, () =>
      this.getJson<{
        items: T[];
        metadata?: { continue?: string; remainingItemCount?: number };
      }>(`/api/v1/namespaces/${this.namespace}/${resource}?${query}`),
    );
    return {
      items: list.items,
      continue: list.metadata?.continue || undefined,
      remaining: list.metadata?.remainingItemCount,
    };
  }

  async deleteResult(deletion: Promise<unknown>): Promise<DeleteResult> {
    try {
      await deletion;
      return "deleted";
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return "absent";
      if (error instanceof KubeApiError && error.status === 409) return "conflict";
      throw error;
    }
  }
}

export function deleteOptions(preconditions?: DeletePreconditions): V1DeleteOptions | undefined {
  if (!preconditions) return undefined;
  return {
    preconditions: { uid: preconditions.uid, resourceVersion: preconditions.resourceVersion },
  };
}
