import type { V1PersistentVolume, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { inject } from "vitest";
import { core, expire, handlerPods, k, NAMESPACE, runReaperJob } from "./fleet.js";

export async function readWorkspace(name: string): Promise<V1PersistentVolumeClaim | undefined> {
  return core()
    .readNamespacedPersistentVolumeClaim({ name, namespace: NAMESPACE })
    .catch(() => undefined);
}

export async function readVolume(name: string): Promise<V1PersistentVolume | undefined> {
  return core()
    .readPersistentVolume({ name })
    .catch(() => undefined);
}

/** A request to an instance's gptme-server through the public gateway route (Traefik). */
export function gateway(
  endpoint: { path: string; token: string },
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<Response> {
  return fetch(`${inject("traefikUrl")}${endpoint.path}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${endpoint.token}`,
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** The client API's delete (the key in X-API-Key), asked of a handler pod directly. */
export async function deleteAsClient(
  apiKey: string,
  instanceId: string,
  query = "",
): Promise<{ status: number; body: unknown }> {
  const pod = (await handlerPods())[0];
  if (!pod?.status?.podIP) throw new Error("no handler pod to ask");
  const res = await fetch(`http://${pod.status.podIP}:8080/instances/${instanceId}${query}`, {
    method: "DELETE",
    headers: { "x-api-key": apiKey },
  });
  return { status: res.status, body: await res.json() };
}

/** Lets an instance expire and runs the reaper as its CronJob would; the Job's JSON log lines. */
export async function reapAsIdle(name: string): Promise<Record<string, unknown>[]> {
  await expire(name);
  const { job, lines } = runReaperJob("reap-ws");
  k(["delete", "job", job, "-n", NAMESPACE, "--wait=false"]);
  return lines;
}
