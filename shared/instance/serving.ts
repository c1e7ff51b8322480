import type { V1Pod } from "@kubernetes/client-node";
import { instancePortOf } from "./pod-spec.js";

/**
 * When the fleet first saw the Pod's gptme-server answer its health check (RFC 3339), written
 * once on the Pod by whoever saw it: from then on any replica reads "ready" from the Pod
 * alone, without asking the server again.
 */
export const ANNOTATION_SERVING_SINCE = "gptme.ai/serving-since";

/** gptme-server's probe endpoint: no token, and an `/api/` path (others answer the web UI). */
export const HEALTH_PATH = "/api/v2/server/health";

/**
 * Whether the Pod's gptme-server answers, as far as the Pod says: the fleet saw it answer,
 * and the kubelet has not since turned the Pod unready. The kubelet's own Ready lags the
 * server by up to its probe period (and on KWOK is true before anything listens), so it is
 * believed only when it turns false after the fleet's sighting: a container that crashed or
 * restarted since.
 */
export function isServing(pod: V1Pod): boolean {
  const since = timeOf(pod.metadata?.annotations?.[ANNOTATION_SERVING_SINCE]);
  if (since === undefined || !pod.status?.podIP) return false;
  const ready = (pod.status.conditions ?? []).find((c) => c.type === "Ready");
  if (!ready || ready.status === "True") return true;
  // Kubernetes stamps conditions to the second: a transition in the second of the sighting
  // (the Pod's start, typically) is the kubelet catching up, not a change since.
  const changed = timeOf(ready.lastTransitionTime);
  return changed === undefined || changed < Math.floor(since / 1000) * 1000 + 1000;
}

/** Where the Pod's gptme-server answers its health check; undefined before it has an IP. */
export function healthUrlOf(pod: V1Pod): string | undefined {
  const ip = pod.status?.podIP;
  if (!ip) return undefined;
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return `http://${host}:${instancePortOf(pod)}${HEALTH_PATH}`;
}

/** The phase of a Pod whose gptme-server answers: its container runs. */
export const SERVING_PHASE = "Running";

/** The annotations that record a sighting at `at`. */
export function servingAnnotations(at: Date): Record<string, string> {
  return { [ANNOTATION_SERVING_SINCE]: at.toISOString() };
}

/** Whether a gptme-server answers at `url` with a 2xx within `timeoutMs`. */
export async function answersHealth(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function timeOf(value: string | Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const time = new Date(value).getTime();
  return Number.isNaN(time) ? undefined : time;
}
