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
  type V1Pod,
  type V1PodTemplate,
  Watch,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import {
  type ClientPod,
  type ClientPodStatus,
  clientPodSchema,
  GROUP,
  PLURAL,
  VERSION,
} from "./clientpod.js";
import { CallTimeoutError, KubeTransport } from "./kube-transport.js";

/** How long one API call may take before the API server counts as unavailable. */
export const REQUEST_TIMEOUT_MS = 5_000;

/** The API server could not be reached, timed out, or said it is overloaded. */
export class KubeUnavailableError extends Error {
  override name = "KubeUnavailableError";
}

/** The API server refused a call with a status the caller did not expect. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export type Verb = "get" | "list" | "create" | "patch" | "delete" | "watch";
export type Resource = "clientpods" | "pods" | "podtemplates";

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
}

/** Preconditions for a delete: it fails with "conflict" when the object changed since it was read. */
export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
}

export type DeleteResult = "deleted" | "absent" | "conflict";

export type CreateResult<T> = { created: true; object: T } | { created: false };

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/**
 * The few Kubernetes API calls the fleet makes, in one namespace. Expected statuses become
 * domain answers (404 = absent, 409 = exists or changed); anything else is thrown as
 * KubeApiError, and a network failure or timeout as KubeUnavailableError.
 */
export class Kube {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly transport: KubeTransport;

  constructor(
    private readonly kc: KubeConfig,
    readonly namespace: string,
    private readonly observer: KubeObserver = {},
    timeoutMs = REQUEST_TIMEOUT_MS,
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

  /** Closes idle keep-alive connections, so a process can exit promptly. */
  close(): void {
    this.transport.close();
  }

  // --- ClientPods -------------------------------------------------------------------------

  async getClientPod(name: string): Promise<ClientPod | undefined> {
    const raw = await this.call("get", "clientpods", () =>
      this.custom.getNamespacedCustomObject({ ...this.crd(), name }),
    ).catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  async createClientPod(body: object): Promise<CreateResult<ClientPod>> {
    const raw = await this.call("create", "clientpods", () =>
      this.custom.createNamespacedCustomObject({ ...this.crd(), body }),
    ).catch(absentOn409);
    return raw === undefined
      ? { created: false }
      : { created: true, object: clientPodSchema.parse(raw) };
  }

  /** Merge-patches the status subresource; undefined when the ClientPod is gone. */
  async patchClientPodStatus(
    name: string,
    status: ClientPodStatus,
  ): Promise<ClientPod | undefined> {
    const raw = await this.call("patch", "clientpods", () =>
      this.custom.patchNamespacedCustomObjectStatus(
        { ...this.crd(), name, body: { status } },
        mergePatch,
      ),
    ).catch(absentOn404);
    return raw === undefined ? undefined : clientPodSchema.parse(raw);
  }

  /**
   * Deletes a ClientPod; its Pod follows through the garbage collector. With preconditions,
   * an object that changed since it was read is left alone ("conflict").
   */
  async deleteClientPod(name: string, preconditions?: DeletePreconditions): Promise<DeleteResult> {
    return this.deleteResult(
      this.call("delete", "clientpods", () =>
        this.custom.deleteNamespacedCustomObject({
          ...this.crd(),
          name,
          propagationPolicy: "Background",
          body: deleteOptions(preconditions),
        }),
      ),
    );
  }

  /** One page of ClientPods; items that fail the schema are dropped and reported. */
  async listClientPods(
    options: ListOptions = {},
  ): Promise<Page<ClientPod> & { invalid: string[] }> {
    const raw = (await this.call("list", "clientpods", () =>
      this.custom.listNamespacedCustomObject({
        ...this.crd(),
        labelSelector: options.labelSelector,
        limit: options.limit,
        _continue: options.continue,
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

  // --- Pods -------------------------------------------------------------------------------

  /**
   * The Pod as plain JSON (its timestamps stay strings): this is the warm path's one call,
   * and the typed client's conversion of every field into model objects is CPU spent on
   * fields nobody reads (measured: 1.60 -> 1.47 ms of handler CPU per warm request).
   *
   * `fromCache` reads the API server's watch cache (resourceVersion=0) instead of a quorum
   * read from etcd: the state may be milliseconds old, and the call costs the API server
   * 0.78 instead of 1.2 ms of CPU and etcd nothing (measured at 16 in flight). For reads
   * where a moment-old answer is what a moment-earlier request would have got, and the next
   * request repairs whatever it missed.
   */
  async getPod(name: string, { fromCache = false } = {}): Promise<V1Pod | undefined> {
    const path = `/api/v1/namespaces/${this.namespace}/pods/${encodeURIComponent(name)}`;
    return this.call("get", "pods", () =>
      this.getJson<V1Pod>(fromCache ? `${path}?resourceVersion=0` : path),
    ).catch(absentOn404);
  }

  async createPod(body: V1Pod): Promise<CreateResult<V1Pod>> {
    const pod = await this.call("create", "pods", () =>
      this.core.createNamespacedPod({ namespace: this.namespace, body }),
    ).catch(absentOn409);
    return pod === undefined ? { created: false } : { created: true, object: pod };
  }

  /** Merge-patches a Pod (annotations); undefined when it is gone. */
  async patchPod(name: string, patch: object): Promise<V1Pod | undefined> {
    return this.call("patch", "pods", () =>
      this.core.patchNamespacedPod({ name, namespace: this.namespace, body: patch }, mergePatch),
    ).catch(absentOn404);
  }

  async deletePod(name: string, preconditions?: DeletePreconditions): Promise<DeleteResult> {
    return this.deleteResult(
      this.call("delete", "pods", () =>
        this.core.deleteNamespacedPod({
          name,
          namespace: this.namespace,
          body: deleteOptions(preconditions),
        }),
      ),
    );
  }

  async listPods(options: ListOptions = {}): Promise<Page<V1Pod>> {
    const list = await this.call("list", "pods", () =>
      this.core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: options.labelSelector,
        limit: options.limit,
        _continue: options.continue,
      }),
    );
    return {
      items: list.items,
      continue: list.metadata?._continue || undefined,
      remaining: list.metadata?.remainingItemCount,
    };
  }

  /**
   * Watches a Pod from the state given until `done(pod)` holds, the Pod is deleted, or
   * `timeoutMs` passes, and returns the latest state seen (undefined once deleted). Nothing
   * outlives the call: the watch is closed on every exit. A watch that fails, or `signal`
   * (the process shutting down), ends the wait early with what is known, so a request
   * degrades to "still starting", never to an error.
   */
  async waitForPod(
    pod: V1Pod,
    done: (pod: V1Pod) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<V1Pod | undefined> {
    const name = pod.metadata?.name;
    const resourceVersion = pod.metadata?.resourceVersion;
    if (timeoutMs <= 0 || !name || !resourceVersion || done(pod) || signal?.aborted) return pod;
    this.observer.call?.("watch", "pods");
    return new Promise((resolve) => {
      let latest: V1Pod | undefined = pod;
      let settled = false;
      let controller: AbortController | undefined;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", settle);
        controller?.abort();
        resolve(latest);
      };
      const timer = setTimeout(settle, timeoutMs);
      signal?.addEventListener("abort", settle);
      const query = {
        fieldSelector: `metadata.name=${name}`,
        resourceVersion,
        allowWatchBookmarks: false,
        timeoutSeconds: Math.ceil(timeoutMs / 1000),
      };
      new Watch(this.kc)
        .watch(
          `/api/v1/namespaces/${this.namespace}/pods`,
          query,
          (type: string, object: V1Pod) => {
            if (type === "DELETED") {
              latest = undefined;
              settle();
            } else if (type === "ADDED" || type === "MODIFIED") {
              latest = object;
              if (done(object)) settle();
            }
          },
          settle,
        )
        .then((c) => {
          controller = c;
          if (settled) c.abort();
        })
        .catch(settle);
    });
  }

  /** How many ClientPods the namespace holds, counted by the API server, not by listing them all. */
  async countClientPods(): Promise<number> {
    let page = await this.listClientPods({ limit: 1 });
    let count = page.items.length + page.invalid.length;
    if (page.remaining !== undefined || !page.continue) return count + (page.remaining ?? 0);
    // remainingItemCount is an estimate the server may omit: count page by page then.
    while (page.continue) {
      page = await this.listClientPods({ limit: 500, continue: page.continue });
      count += page.items.length + page.invalid.length;
    }
    return count;
  }

  // --- PodTemplates -----------------------------------------------------------------------

  async getPodTemplate(name: string): Promise<V1PodTemplate | undefined> {
    return this.call("get", "podtemplates", () =>
      this.core.readNamespacedPodTemplate({ name, namespace: this.namespace }),
    ).catch(absentOn404);
  }

  // --- plumbing ---------------------------------------------------------------------------

  /** A GET answered as plain JSON, without client-node's conversion into model objects. */
  private async getJson<T>(path: string): Promise<T> {
    const response = await this.transport.get(path);
    if (response.status !== 200) {
      throw new ApiException(response.status, "GET failed", response.text, response.headers);
    }
    return JSON.parse(response.text) as T;
  }

  private crd() {
    return { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.namespace };
  }

  private async call<T>(verb: Verb, resource: Resource, fn: () => Promise<T>): Promise<T> {
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

function deleteOptions(preconditions?: DeletePreconditions): V1DeleteOptions | undefined {
  if (!preconditions) return undefined;
  return {
    preconditions: { uid: preconditions.uid, resourceVersion: preconditions.resourceVersion },
  };
}

/** Maps what client-node throws onto the two errors callers handle. */
function toKubeError(error: unknown): KubeUnavailableError | KubeApiError {
  if (error instanceof KubeApiError || error instanceof KubeUnavailableError) return error;
  if (error instanceof ApiException) {
    const status = parseStatus(error.body);
    const code = error.code;
    // 429 (API priority and fairness) and 5xx from the server or a proxy in front of it
    // mean "try again later", the same as an unreachable server.
    if (code === 429 || code === 502 || code === 503 || code === 504) {
      return new KubeUnavailableError(`the API server answered ${code}`);
    }
    return new KubeApiError(
      code,
      status.reason ?? "Unknown",
      status.message ?? `API status ${code}`,
    );
  }
  if (error instanceof CallTimeoutError) {
    return new KubeUnavailableError("the API server did not answer in time");
  }
  const name = (error as { name?: string } | undefined)?.name;
  const code = (error as { code?: string } | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+/.test(code)) {
    return new KubeUnavailableError(
      `the API server cannot be reached (${code ?? "network error"})`,
    );
  }
  return new KubeUnavailableError(`the API server call failed (${name ?? "unknown error"})`);
}

function parseStatus(body: unknown): { reason?: string; message?: string } {
  try {
    const status = typeof body === "string" ? JSON.parse(body) : body;
    return { reason: status?.reason, message: status?.message };
  } catch {
    return {};
  }
}

function absentOn(status: number) {
  return (error: unknown): undefined => {
    if (error instanceof KubeApiError && error.status === status) return undefined;
    throw error;
  };
}

const absentOn404 = absentOn(404);
const absentOn409 = absentOn(409);
