import { CoreV1Api } from "@kubernetes/client-node";
import type { Kube } from "../../shared/kube/client.js";
import { adminKube, adminKubeConfig, createTestNamespace, deleteTestNamespace } from "./cluster.js";
import { installTemplate, startHandler, type TestHandler, type TestResponse } from "./fleet.js";
import { type GptmeServer, runInstancePod } from "./gptme.js";

// The fleet the workspace tests run against (test/workspaces/*.test.ts): a namespace of their
// own and one handler with an admin token. Claims bind through the cluster's default
// StorageClass (Kubernetes' own hostPath provisioner, scripts/cluster.sh), and a real
// gptme-server runs at each KWOK pod's loopback IP with its data on the directory behind the
// bound volume, as a kubelet would mount it (runInstancePod).

export const KEY = "workspaces-key-000001";
export const ADMIN_TOKEN = "workspaces-admin-token-0001";

/** An answer of the routes, its JSON body read. */
export type Answer = { status: number; body: Awaited<ReturnType<TestResponse["json"]>> };

export interface WorkspacesFleet {
  namespace: string;
  handler: TestHandler;
  kube: Kube;
  core: CoreV1Api;
  /** GET /instances/:id; wait=0 by default: ready means a server answers (202 until one runs). */
  get(id: string, wait?: number): Promise<Answer>;
  /** DELETE /instances/:id, with a query such as `?purge=true`. */
  remove(id: string, query?: string): Promise<Answer>;
  /** GET /admin/workspaces with a query, as the admin. */
  admin(query: string): Promise<TestResponse>;
  /** Runs the instance's gptme-server; stopped by stopServers. */
  serve(name: string): Promise<GptmeServer>;
  stopServers(): Promise<void>;
  close(): Promise<void>;
}

export async function startWorkspacesFleet(prefix: string): Promise<WorkspacesFleet> {
  const namespace = await createTestNamespace(prefix);
  await installTemplate(namespace);
  const handler = startHandler(namespace, { ADMIN_TOKEN });
  const kube = adminKube(namespace);
  const servers: GptmeServer[] = [];
  const answerOf = async (response: TestResponse): Promise<Answer> => ({
    status: response.status,
    body: await response.json(),
  });
  const stopServers = async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  };
  return {
    namespace,
    handler,
    kube,
    core: adminKubeConfig().makeApiClient(CoreV1Api),
    get: async (id, wait = 0) =>
      answerOf(await handler.request(`/instances/${id}?wait=${wait}`, { apiKey: KEY })),
    remove: async (id, query = "") =>
      answerOf(
        await handler.request(`/instances/${id}${query}`, { apiKey: KEY, method: "DELETE" }),
      ),
    admin: (query) =>
      handler.request(`/admin/workspaces${query}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    async serve(name) {
      const server = await runInstancePod(namespace, name);
      servers.push(server);
      return server;
    },
    stopServers,
    async close() {
      await stopServers();
      handler.close();
      kube.close();
      await deleteTestNamespace(namespace);
    },
  };
}

/** A call to an instance's gptme-server API, with its token. */
export const gptme = (server: GptmeServer, path: string, init: RequestInit = {}) =>
  fetch(`${server.url}/api/v2/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
  });
