import type { H3 } from "h3";
import type { Kube } from "../../shared/kube/client.js";
import type { Metrics } from "../metrics.js";

/** How long a readiness answer is reused, so probes from many kubelets don't hammer the API server. */
export const READINESS_CACHE_MS = 2_000;

/**
 * Readiness: the API server answers and the ClientPod CRD is installed (listing one
 * ClientPod proves both, and that the handler may read them).
 */
export class Readiness {
  private checked = 0;
  private pending: Promise<boolean> | undefined;
  private ready = false;

  constructor(
    private readonly kube: Kube,
    private readonly now: () => number = Date.now,
  ) {}

  async isReady(): Promise<boolean> {
    if (this.now() - this.checked < READINESS_CACHE_MS) return this.ready;
    // Concurrent probes share one API call.
    this.pending ??= this.kube.clientPods
      .list({ limit: 1 })
      .then(
        () => true,
        () => false,
      )
      .then((ready) => {
        this.ready = ready;
        this.checked = this.now();
        this.pending = undefined;
        return ready;
      });
    return this.pending;
  }
}

export function opsRoutes(app: H3, readiness: Readiness, metrics: Metrics): void {
  app.get("/healthz", () => ({ status: "ok" }));

  app.get("/readyz", async (event) => {
    if (await readiness.isReady()) return { status: "ready" };
    event.res.status = 503;
    return {
      status: "not ready",
      message: "The Kubernetes API server or the ClientPod CRD is unavailable.",
    };
  });

  app.get("/metrics", async (event) => {
    event.res.headers.set("content-type", metrics.registry.contentType);
    return await metrics.registry.metrics();
  });
}
