import type { Kube } from "../../shared/kube/client.js";
import { adminKube, createTestNamespace, deleteTestNamespace } from "./cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
  type TestResponse,
} from "./fleet.js";
import type { GptmeServer } from "./gptme.js";

// The fleet the sign-in tests run against (test/signin/signin*.test.ts): a namespace of their
// own, two handler replicas sharing it, the first also listening on a real port.

export const KEY = "signin-key-AAAAAAAA";
export const OTHER_KEY = "signin-key-BBBBBBBB";
export const JSON_BODY = { "content-type": "application/json" };
export const SIGNIN_ENV = {
  PUBLIC_URL: "https://fleet.example.com",
  WEBUI_URL: "http://127.0.0.1:5701/",
  CORS_ORIGINS: "tauri://localhost,http://127.0.0.1:5701",
};

export interface SignInFleet {
  namespace: string;
  replicaA: TestHandler;
  replicaB: TestHandler;
  /** replicaA on a real port (for fetch and event streams). */
  http: { url: string; close(): Promise<void> };
  admin: Kube;
  /** gptme-servers the tests started: stopped at the end. */
  servers: GptmeServer[];
  close(): Promise<void>;
}

export async function startSignInFleet(prefix: string): Promise<SignInFleet> {
  const namespace = await createTestNamespace(prefix);
  await installTemplate(namespace);
  const replicaA = startHandler(namespace, SIGNIN_ENV);
  const replicaB = startHandler(namespace, SIGNIN_ENV);
  const http = await listenHandler(replicaA);
  const admin = adminKube(namespace);
  const servers: GptmeServer[] = [];
  return {
    namespace,
    replicaA,
    replicaB,
    http,
    admin,
    servers,
    async close() {
      for (const server of servers) await server.stop();
      await http.close();
      replicaA.close();
      replicaB.close();
      admin.close();
      await deleteTestNamespace(namespace);
    },
  };
}

/** Asks for a login code of an instance (made if need be). */
export const login = (handler: TestHandler, instanceId: string, key = KEY, wait = 0) =>
  handler.request(`/instances/${instanceId}/login?wait=${wait}`, { apiKey: key, method: "POST" });

/** Exchanges a code (a JSON body, or any text as it is) at the operator's exchange route. */
export const exchange = (
  handler: TestHandler,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  handler.request("/api/v1/operator/auth/exchange", {
    method: "POST",
    headers: { ...JSON_BODY, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

export const codeOf = async (res: TestResponse): Promise<string> => (await res.json()).login.code;
