import { KubeCalls, type KubeObserver } from "./calls.js";
import { ClientPods } from "./clientpods.js";
import { ConfigMaps } from "./configmaps.js";
import type { KubeCredentials } from "./credentials.js";
import { Pods } from "./pods.js";
import { PodTemplates } from "./podtemplates.js";
import { PersistentVolumeClaims } from "./pvcs.js";
import { ResourceQuotas } from "./quotas.js";
import { Secrets } from "./secrets.js";
import { CodeObjects } from "./signin-codes.js";

export type {
  CreateResult,
  DeletePreconditions,
  DeleteResult,
  KubeObserver,
  ListOptions,
  Page,
  Resource,
  Verb,
} from "./calls.js";
export { credentialsOf, type KubeCredentials } from "./credentials.js";
export { isExpiredList, KubeApiError, KubeUnavailableError } from "./errors.js";

/** How long one API call may take before the API server counts as unavailable. */
export const REQUEST_TIMEOUT_MS = 5_000;

/**
 * The few Kubernetes API calls the fleet makes, in one namespace, one module per resource.
 * Expected statuses become domain answers (404 = absent, 409 = exists or changed); anything
 * else is thrown as KubeApiError, and a network failure or timeout as KubeUnavailableError.
 */
export class Kube {
  readonly clientPods: ClientPods;
  readonly pods: Pods;
  readonly podTemplates: PodTemplates;
  readonly secrets: Secrets;
  /** Instance workspaces. */
  readonly workspaces: PersistentVolumeClaims;
  /** One-time sign-in codes (shared/signin-code.ts). */
  readonly codes: CodeObjects;
  /** ConfigMaps read and written whole (the reaper's stats, shared/reaper-stats.ts). */
  readonly configMaps: ConfigMaps;
  /** The namespace's ResourceQuotas (the fleet's hard cap). */
  readonly quotas: ResourceQuotas;
  private readonly api: KubeCalls;

  constructor(
    credentials: KubeCredentials,
    readonly namespace: string,
    observer: KubeObserver = {},
    timeoutMs = REQUEST_TIMEOUT_MS,
  ) {
    this.api = new KubeCalls(credentials, namespace, observer, timeoutMs);
    this.clientPods = new ClientPods(this.api);
    this.pods = new Pods(this.api);
    this.podTemplates = new PodTemplates(this.api);
    this.secrets = new Secrets(this.api);
    this.workspaces = new PersistentVolumeClaims(this.api);
    this.codes = new CodeObjects(this.api);
    this.configMaps = new ConfigMaps(this.api);
    this.quotas = new ResourceQuotas(this.api);
  }

  /** Closes idle keep-alive connections, so a process can exit promptly. */
  close(): void {
    this.api.transport.close();
  }
}
