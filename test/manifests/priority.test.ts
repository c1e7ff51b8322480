import { resolve } from "node:path";
import { FlowcontrolApiserverV1Api, HttpMethod, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { KubeTransport } from "../../shared/kube/transport.js";
import { adminKubeConfig, eventually, kubeconfigPath } from "../support/cluster.js";
import { serviceAccountKubeConfig } from "../support/credentials.js";
import { kubectl } from "../support/kubectl.js";

const MANIFESTS = resolve(import.meta.dirname, "../../k8s/local/fleet-operator");
const NAMESPACE = "gptme-fleet";

/**
 * One call as the identity of `kc`, with the fleet's own transport; the API server says in
 * two response headers which FlowSchema it matched and at which priority level it ran.
 */
async function classify(
  transport: KubeTransport,
  method: HttpMethod,
  path: string,
  body?: object,
): Promise<{ status: number; flowSchema?: string; priorityLevel?: string }> {
  const response = await transport.request(
    method,
    path,
    body && JSON.stringify(body),
    "application/merge-patch+json",
  );
  return {
    status: response.status,
    flowSchema: response.headers["x-kubernetes-pf-flowschema-uid"],
    priorityLevel: response.headers["x-kubernetes-pf-prioritylevel-uid"],
  };
}

describe("API Priority and Fairness: the handler's request path has a level of its own", () => {
  const flowcontrol = adminKubeConfig().makeApiClient(FlowcontrolApiserverV1Api);
  const uids: Record<string, string> = {};
  const transports: KubeTransport[] = [];
  let handler: KubeTransport;
  let reaper: KubeTransport;
  let admin: KubeTransport;

  const transport = (kc: KubeConfig) => {
    const t = new KubeTransport(credentialsOf(kc), 10_000);
    transports.push(t);
    return t;
  };
  const pods = `/api/v1/namespaces/${NAMESPACE}/pods`;
  const clientPods = `/apis/gptme.ai/v1/namespaces/${NAMESPACE}/clientpods`;

  beforeAll(async () => {
    // The manifests as shipped: the ServiceAccounts and the flow schemas name gptme-fleet.
    kubectl(kubeconfigPath(), ["apply", "-f", MANIFESTS]);
    for (const name of ["fleet-handler", "fleet-handler-lists", "fleet-reaper"]) {
      const schema = await flowcontrol.readFlowSchema({ name });
      uids[`flowschema/${name}`] = schema.metadata?.uid ?? "";
    }
    for (const name of ["fleet-handler", "fleet-background"]) {
      const level = await flowcontrol.readPriorityLevelConfiguration({ name });
      uids[`level/${name}`] = level.metadata?.uid ?? "";
    }
    handler = transport(await serviceAccountKubeConfig(NAMESPACE, "fleet-handler"));
    reaper = transport(await serviceAccountKubeConfig(NAMESPACE, "fleet-reaper"));
    admin = transport(adminKubeConfig());
  });

  afterAll(() => {
    for (const t of transports) t.close();
  });

  it("installs schemas the API server accepts, each pointing at an existing level", async () => {
    for (const name of ["fleet-handler", "fleet-handler-lists", "fleet-reaper"]) {
      const dangling = await eventually(async () => {
        const schema = await flowcontrol.readFlowSchema({ name });
        return schema.status?.conditions?.find((c) => c.type === "Dangling");
      }, `the API server's verdict on FlowSchema ${name}`);
      expect(dangling.status, name).toBe("False");
    }
  });

  it("runs the handler's reads, writes and watches at the fleet-handler level", async () => {
    const calls: [HttpMethod, string, object?][] = [
      // The warm path's read: a Pod by name, from the API server's cache.
      [HttpMethod.GET, `${pods}/gptme-client-0000000000000000?resourceVersion=0`],
      [HttpMethod.GET, `${clientPods}/gptme-client-0000000000000000`],
      // An activity write (there is no such instance: still classified, then answered 404).
      [
        HttpMethod.PATCH,
        `${clientPods}/gptme-client-0000000000000000/status`,
        { status: { lastActivity: new Date().toISOString() } },
      ],
      // A readiness wait.
      [HttpMethod.GET, `${pods}?watch=true&fieldSelector=metadata.name%3Dnone&timeoutSeconds=1`],
    ];
    for (const [method, path, body] of calls) {
      const answer = await classify(handler, method, path, body);
      expect(answer.status, path).toBeLessThan(500);
      expect(answer.flowSchema, `${method} ${path}`).toBe(uids["flowschema/fleet-handler"]);
      expect(answer.priorityLevel, `${method} ${path}`).toBe(uids["level/fleet-handler"]);
    }
  });

  it("runs the handler's LISTs (the admin API's pages, per-client listings) at the background level", async () => {
    for (const path of [`${clientPods}?limit=50`, `${pods}?labelSelector=gptme.ai%2Fclient%3Dx`]) {
      const answer = await classify(handler, HttpMethod.GET, path);
      expect(answer.status, path).toBe(200);
      expect(answer.flowSchema, path).toBe(uids["flowschema/fleet-handler-lists"]);
      expect(answer.priorityLevel, path).toBe(uids["level/fleet-background"]);
    }
  });

  it("runs everything the reaper does at the background level", async () => {
    const calls: [HttpMethod, string][] = [
      [
        HttpMethod.GET,
        `${pods}?limit=500&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dgptme-fleet`,
      ],
      [HttpMethod.GET, `${clientPods}?limit=500`],
      [HttpMethod.DELETE, `${clientPods}/gptme-client-0000000000000000`],
    ];
    for (const [method, path] of calls) {
      const answer = await classify(reaper, method, path);
      expect(answer.status, path).toBeLessThan(500);
      expect(answer.flowSchema, `${method} ${path}`).toBe(uids["flowschema/fleet-reaper"]);
      expect(answer.priorityLevel, `${method} ${path}`).toBe(uids["level/fleet-background"]);
    }
  });

  it("leaves every other identity to the cluster's own schemas", async () => {
    const answer = await classify(admin, HttpMethod.GET, `${clientPods}?limit=1`);
    expect(answer.flowSchema).toBeDefined();
    expect(Object.values(uids)).not.toContain(answer.flowSchema);
  });
});
