import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POOL_SELECTOR } from "../../shared/pool/member.js";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";
import { poolPass } from "../support/pool.js";
import { cookiePair, PreviewApp, previewRequest } from "../support/preview.js";
import { freePort } from "../support/process.js";

const KEY = "pool-claimed-key-0001";
const DOMAIN = "preview.localhost";
const ENV = {
  POOL_SIZE: "1",
  INSTANCE_TOKEN_SECRET: "pool-claimed-token-key-0123456789abcdef012345",
  GATEWAY_HOLD: "30s",
  PREVIEW_DOMAIN: DOMAIN,
  ADMIN_TOKEN: "pool-claimed-admin-token-0001",
};

// An instance made from a pool member keeps the member's names for its Pod and workspace
// claim (its gateway path names that Pod). Everything done to an instance by name must reach
// those: the gateway's heal after an eviction, its preview host, its delete and purge.
describe("an instance claimed from the warm pool, by its own name and its member's", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let listening: number;
  let app: PreviewApp;
  const servers: GptmeServer[] = [];
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  // biome-ignore lint/suspicious/noExplicitAny: the instance body as a client reads it
  let instance: any;
  let podName = "";

  const podOf = (name: string) =>
    core.readNamespacedPod({ name, namespace }).catch(() => undefined);
  const workspaceOf = (name: string) =>
    core.readNamespacedPersistentVolumeClaim({ name, namespace }).catch(() => undefined);
  const gateway = (path: string) =>
    fetch(`${http.url}${instance.endpoint.path}${path}`, {
      headers: { authorization: `Bearer ${instance.endpoint.token}` },
    });

  beforeAll(async () => {
    namespace = await createTestNamespace("poolclaimed");
    await installTemplate(namespace);
    listening = await freePort();
    handler = startHandler(namespace, { ...ENV, PUBLIC_URL: `http://127.0.0.1:${listening}` });
    http = await listenHandler(handler, listening);
    app = await new PreviewApp("the agent's app").listen();

    // One member, as the reaper's pass makes it, run by a real gptme-server.
    await poolPass(namespace, ENV, 1);
    const [member] = (await core.listNamespacedPod({ namespace, labelSelector: POOL_SELECTOR }))
      .items;
    podName = member?.metadata?.name ?? "";
    servers.push(await runInstancePod(namespace, podName));

    instance = await (await handler.request("/instances/claimed?wait=30", { apiKey: KEY })).json();
    expect(instance, JSON.stringify(instance)).toMatchObject({ status: "ready", created: true });
    expect(instance.endpoint.path).toBe(`/api/v1/instances/${podName}`);
    expect(instance.name).not.toBe(podName);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await app?.close();
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("runs the current revision, as any instance started from the same template", async () => {
    const admin = async (path: string) =>
      (
        await handler.request(path, {
          headers: { authorization: `Bearer ${ENV.ADMIN_TOKEN}` },
        })
      ).json();
    // The claim's first status (written just after its answer) records the member's revision.
    const shown = await eventually(async () => {
      const body = await admin(`/admin/pods/${instance.name}`);
      return body.revision ? body : undefined;
    }, "the instance's revision");
    const rollout = await admin("/admin/rollout");
    expect(shown).toMatchObject({ revision: rollout.current, outdated: false });
    expect(rollout.outdated).toBe(0);
  });

  it("opens its preview host, named by the instance, on the member's Pod", async () => {
    const res = await handler.request(`/instances/claimed/previews/${app.port}`, {
      method: "POST",
      apiKey: KEY,
    });
    expect(res.status).toBe(200);
    const link = new URL(((await res.json()) as { url: string }).url);
    expect(link.hostname).toBe(`${app.port}-${instance.name}.${DOMAIN}`);
    const signedIn = await previewRequest(http.url, link.host, link.pathname + link.search);
    expect(signedIn.status).toBe(302);
    const cookie = cookiePair(signedIn.headers["set-cookie"]);
    const page = await previewRequest(http.url, link.host, "/", { headers: { cookie } });
    expect(page.status, page.body).toBe(200);
    expect(page.body).toContain("the agent's app");
  });

  it("is reached at once through another replica, before the claim has written its alias", async () => {
    // A claim answers, then writes the alias from the member's name to the instance; its
    // client asks the gateway at once, often on another replica. That moment, held still:
    const alias = await core.readNamespacedConfigMap({ name: podName, namespace });
    await core.deleteNamespacedConfigMap({ name: podName, namespace });
    await eventually(async () => {
      const cached = await core.listNamespacedConfigMap({
        namespace,
        fieldSelector: `metadata.name=${podName}`,
        resourceVersion: "0",
      });
      return cached.items.length === 0 ? true : undefined;
    }, "the alias gone from the API server's cache");
    const other = startHandler(namespace, ENV);
    const otherHttp = await listenHandler(other, await freePort());
    try {
      const res = await fetch(`${otherHttp.url}${instance.endpoint.path}/api/v2/conversations`, {
        headers: { authorization: `Bearer ${instance.endpoint.token}` },
      });
      expect(res.status, await res.clone().text()).toBe(200);
    } finally {
      await otherHttp.close();
      other.close();
      const { name, labels, ownerReferences } = alias.metadata ?? {};
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name, labels, ownerReferences }, data: alias.data },
      });
    }
  });

  it("starts its evicted Pod again under the member's name, through the gateway, same token", async () => {
    const before = (await podOf(podName))?.metadata?.uid;
    await core.deleteNamespacedPod({ name: podName, namespace, gracePeriodSeconds: 0 });
    await servers.shift()?.stop();
    await eventually(async () => ((await podOf(podName)) ? undefined : true), "the Pod to go");
    // Past the gateway's lookup cache (1 s), which may still hold the old Pod.
    await new Promise((r) => setTimeout(r, 1_100));

    const answer = gateway("/api/v2/conversations");
    // The kubelet's part: run the new Pod's container once it exists.
    const pod = await eventually(async () => {
      const p = await podOf(podName);
      return p?.status?.podIP && p.metadata?.uid !== before ? p : undefined;
    }, "the new Pod, under the member's name");
    expect(pod.metadata?.ownerReferences?.[0]?.name).toBe(instance.name);
    servers.push(await runInstancePod(namespace, podName));
    const res = await answer;
    expect(res.status, await res.clone().text()).toBe(200);
    // The same instance, token and path for its client.
    const again = await (
      await handler.request("/instances/claimed?wait=0", { apiKey: KEY })
    ).json();
    expect(again).toMatchObject({ name: instance.name, status: "ready", created: false });
    expect(again.endpoint).toEqual(instance.endpoint);
  }, 60_000);

  it("deletes its Pod with it, and purges the member-named workspace claim", async () => {
    expect(instance.workspace.name).toBe(podName);
    expect(await workspaceOf(podName)).toBeDefined();
    const res = await handler.request("/instances/claimed?purge=true", {
      method: "DELETE",
      apiKey: KEY,
    });
    expect(await res.json()).toMatchObject({ deleted: true, workspace: "purged" });
    // Deleted by the handler itself, not left to the garbage collector.
    const pod = await podOf(podName);
    expect(pod === undefined || Boolean(pod.metadata?.deletionTimestamp)).toBe(true);
    const claim = await workspaceOf(podName);
    expect(claim === undefined || Boolean(claim.metadata?.deletionTimestamp)).toBe(true);
  });
});
