import type { V1DeleteOptions } from "@kubernetes/client-node";
import type { KubeCredentials } from "./credentials.js";
import { KubeApiError, type KubeUnavailableError, kubeErrorOf, toKubeError } from "./errors.js";
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

/** A merge patch (RFC 7386): the fields given replace theirs, null removes one. */
export const MERGE_PATCH = "application/merge-patch+json";
/** A JSON patch (RFC 6902): operations, `test` ones as preconditions, applied atomically. */
export const JSON_PATCH = "application/json-patch+json";

/**
 * What every resource module shares: calls to the API server as plain JSON over the fleet's
 * transport, the namespace, and the one place where calls are observed and their errors
 * mapped. Expected statuses are left to the caller (404 = absent, 409 = exists or changed);
 * anything else is a KubeApiError, and a network failure or timeout a KubeUnavailableError.
 *
 * Answers stay plain JSON (timestamps are strings): client-node's conversion of each into its
 * model objects is CPU spent on fields nobody reads (measured on the warm path's Pod read:
 * 1.60 -> 1.47 ms of handler CPU per request), and loading its generated clients costs a
 * process 28 MB of heap.
 */
export class KubeCalls {
  readonly transport: KubeTransport;

  constructor(
    credentials: KubeCredentials,
    readonly namespace: string,
    private readonly observer: KubeObserver,
    timeoutMs: number,
  ) {
    this.transport = new KubeTransport(credentials, timeoutMs);
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

  /** One call's answer as JSON; a status other than 2xx is thrown (kubeErrorOf). */
  async send<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const response = await this.transport.request(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      contentType,
    );
    if (response.status < 200 || response.status > 299) {
      throw kubeErrorOf(response.status, response.text);
    }
    return JSON.parse(response.text) as T;
  }

  /** The path of a namespaced core resource, or of one object of it by name. */
  corePath(resource: Resource, name?: string): string {
    const collection = `/api/v1/namespaces/${this.namespace}/${resource}`;
    return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
  }

  /** A GET of one object by name; `fromCache` reads the API server's watch cache. */
  read<T>(resource: Resource, path: string, fromCache: boolean): Promise<T> {
    return this.call("get", resource, () =>
      this.send<T>("GET", fromCache ? `${path}?resourceVersion=0` : path),
    );
  }

  /** Creates an object in the collection at `path`. */
  create<T>(resource: Resource, path: string, body: unknown): Promise<T> {
    return this.call("create", resource, () => this.send<T>("POST", path, body));
  }

  /** Patches the object at `path` (a merge patch unless told otherwise). */
  patch<T>(resource: Resource, path: string, patch: unknown, contentType = MERGE_PATCH) {
    return this.call("patch", resource, () => this.send<T>("PATCH", path, patch, contentType));
  }

  /** Deletes the object at `path`: "conflict" when a precondition failed. */
  delete(resource: Resource, path: string, options?: V1DeleteOptions): Promise<DeleteResult> {
    return this.deleteResult(
      this.call("delete", resource, () => this.send("DELETE", path, options)),
    );
  }

  /** One page of a namespaced core resource as plain JSON (timestamps stay strings). */
  async listJson<T>(resource: Resource, options: ListOptions): Promise<Page<T>> {
    return this.list<T>(resource, this.corePath(resource), options);
  }

  /** One page of the collection at `path`. */
  async list<T>(resource: Resource, path: string, options: ListOptions): Promise<Page<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.continue) query.set("continue", options.continue);
    if (options.fromCache) query.set("resourceVersion", "0");
    const list = await this.call("list", resource, () =>
      this.send<{
        items: T[];
        metadata?: { continue?: string; remainingItemCount?: number };
      }>("GET", `${path}?${query}`),
    );
    return {
      items: list.items,
      continue: list.metadata?.continue || undefined,
      remaining: list.metadata?.remainingItemCount,
    };
  }

  private async deleteResult(deletion: Promise<unknown>): Promise<DeleteResult> {
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
