import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadHandlerConfig } from "../../shared/config/load.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { podRevisionOf } from "../../shared/instance/revision.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { bareTemplate, installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { reapOnce } from "../support/reaper.js";

// Plans on the real control plane: each client's instances get the template, timeouts,
// limit and workspace size of the plan its key names; a plan change moves them (the rollout
// replaces the Pod, keeping token, endpoint and workspace), and grows the workspace where the
// StorageClass allows it.

const ADMIN_TOKEN = "plans-admin-token-000001";
const FREE_KEY = "plans-free-key-0000001";
const PRO_KEY = "plans-pro-key-00000001";
const MOVER_KEY = "plans-mover-key-000001";
const OTHER_KEY = "plans-other-key-000001";
const PLANS = `
default: free
plans:
  free: {template: gptme-client, maxInstancesPerClient: 1, idleTimeout: 15m, maxLifetime: 8h, workspaceSize: 1Gi}
  pro: {template: gptme-client-pro, maxInstancesPerClient: 2, idleTimeout: 2h, maxLifetime: 24h, workspaceSize: 2Gi}
`;
const keysFile = (moverPlan: string, otherPlan: string) =>
  `${FREE_KEY}\n${PRO_KEY} pro\n${MOVER_KEY} ${moverPlan}\n${OTHER_KEY} ${otherPlan}\n`;

/** The pro plan's template: another image, so its Pods have another revision. */
function proTemplate() {
  const template = bareTemplate("gptme-client-pro");
  const container = template.template?.spec?.containers[0];
  if (container) container.image = "ghcr.io/gptme/gptme-server:pro";
  return template;
}

const nameOf = (key: string, instanceId: string) => instanceNameOf(clientIdOf(key), instanceId);

describe("plans: an instance is its client's plan's", () => {
  let namespace: string;
  let dir: string;
  let handler: TestHandler;
  /** A second replica whose workspaces are on the cluster's default class (no expansion). */
  let fixedClass: TestHandler;
  let kube: Kube;
  const storageClass = `plans-expandable-${Date.now().toString(36)}`;
  const storage = () => adminKubeConfig().makeApiClient(StorageV1Api);

  const get = async (h: TestHandler, key: string, id: string) => {
    const res = await h.request(`/instances/${id}?wait=0`, { apiKey: key });
    return { status: res.status, body: await res.json() };
  };
  const admin = async (path: string) =>
    (await handler.request(path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const writeKeys = (moverPlan: string, otherPlan = "free") => {
    writeFileSync(join(dir, "keys.next"), keysFile(moverPlan, otherPlan));
    renameSync(join(dir, "keys.next"), join(dir, "keys"));
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("plans");
    await installTemplate(namespace);
    await installTemplate(namespace, proTemplate());
    // Kubernetes' hostPath provisioner, as the cluster's default class, but expandable.
    await storage().createStorageClass({
      body: {
        metadata: { name: storageClass },
        provisioner: "kubernetes.io/host-path",
        allowVolumeExpansion: true,
        reclaimPolicy: "Delete",
        volumeBindingMode: "Immediate",
      },
    });
    dir = mkdtempSync(join(tmpdir(), "plans-"));
    writeFileSync(join(dir, "plans.yaml"), PLANS);
    writeFileSync(join(dir, "keys"), keysFile("free", "free"));
    const env = {
      CLIENT_AUTH: "keys",
      API_KEYS_FILE: join(dir, "keys"),
      PLANS_FILE: join(dir, "plans.yaml"),
      CREDENTIALS_RELOAD: "1s",
      ADMIN_TOKEN,
    };
    handler = startHandler(namespace, { ...env, WORKSPACE_STORAGE_CLASS: storageClass });
    fixedClass = startHandler(namespace, env);
    const log = createLogger({ level: "info", name: "fleet-handler" }, handler.logs);
    for (const h of [handler, fixedClass]) {
      for (const file of h.config.credentialFiles) file.watch(log, h.metrics.credentialsObserver);
    }
    kube = adminKube(namespace);
  });

  afterAll(async () => {
    handler?.close();
    fixedClass?.close();
    kube?.close();
    await deleteTestNamespace(namespace);
    await storage()
      .deleteStorageClass({ name: storageClass })
      .catch(() => undefined);
  });

  it("records the plan on the ClientPod, its Pod and workspace, and makes them from its template", async () => {
    const pro = await get(handler, PRO_KEY, "work");
    expect(pro.status).toBe(202);
    expect(pro.body).toMatchObject({ name: nameOf(PRO_KEY, "work"), plan: "pro", created: true });
    // Its lifetime and idle timeout are the plan's, recorded at creation.
    const created = Date.parse(pro.body.createdAt);
    expect(Date.parse(pro.body.expiresAt)).toBe(created + 2 * 3600_000);
    const clientPod = await kube.clientPods.get(pro.body.name);
    expect(clientPod?.spec).toMatchObject({
      plan: "pro",
      podTemplate: "gptme-client-pro",
      idleTimeoutSeconds: 7200,
      maxLifetimeSeconds: 86_400,
    });
    expect(clientPod?.metadata.labels?.["gptme.ai/plan"]).toBe("pro");
    const pod = await kube.pods.get(pro.body.name);
    expect(pod?.metadata?.labels?.["gptme.ai/plan"]).toBe("pro");
    expect(pod?.spec?.containers[0]?.image).toBe("ghcr.io/gptme/gptme-server:pro");
    const claim = await kube.workspaces.get(pro.body.name);
    expect(claim?.spec?.resources?.requests?.storage).toBe("2Gi");
    expect(claim?.metadata?.labels?.["gptme.ai/plan"]).toBe("pro");

    const free = await get(handler, FREE_KEY, "work");
    expect(free.body).toMatchObject({ plan: "free" });
    expect((await kube.clientPods.get(free.body.name))?.spec.idleTimeoutSeconds).toBe(900);
    expect((await kube.pods.get(free.body.name))?.spec?.containers[0]?.image).toBe(
      "ghcr.io/gptme/gptme-server:latest",
    );
    expect((await kube.workspaces.get(free.body.name))?.spec?.resources?.requests?.storage).toBe(
      "1Gi",
    );

    // The warm path: one read, and the plan in the body (once the Pod's phase is recorded).
    await eventually(
      async () =>
        (await kube.pods.get(pro.body.name))?.status?.phase === "Running" ? true : undefined,
      "the Pod to run",
    );
    await get(handler, PRO_KEY, "work");
    handler.counter.reset();
    expect((await get(handler, PRO_KEY, "work")).body.plan).toBe("pro");
    expect(handler.counter.calls).toEqual(["get pods"]);

    // Admin: the plan on every item, and ?plan= asks the API server for one plan's.
    const all = await admin("/admin/pods");
    expect(all.items.map((i: { plan: string }) => i.plan).sort()).toEqual(["free", "pro"]);
    const proOnly = await admin("/admin/pods?plan=pro");
    expect(proOnly.items.map((i: { name: string }) => i.name)).toEqual([pro.body.name]);
    expect((await admin("/admin/pods?plan=gold")).items).toEqual([]);
    expect(await admin("/admin/pods?plan=not%20a%20plan")).toMatchObject({
      code: "invalid_query",
    });
    const metrics = await handler.metrics.registry.metrics();
    expect(metrics).toMatch(/^fleet_instances_created_total\{plan="pro"\} 1$/m);
    expect(metrics).toMatch(/^fleet_instances_created_total\{plan="free"\} 1$/m);
  });

  it("applies the plan's limit per client, naming the plan in 429 instance_limit", async () => {
    const second = await get(handler, FREE_KEY, "second");
    expect(second.status).toBe(429);
    expect(second.body).toMatchObject({ code: "instance_limit" });
    expect(second.body.message).toContain('plan "free"');
    expect(second.body.message).toContain("1 instance,");
    expect(await kube.clientPods.get(nameOf(FREE_KEY, "second"))).toBeUndefined();
    expect((await get(handler, PRO_KEY, "second")).status).toBe(202);
    const third = await get(handler, PRO_KEY, "third");
    expect(third.status).toBe(429);
    expect(third.body.message).toContain('the most your plan "pro" allows');
  });

  it("moves a client's instance to its new plan: recorded at once, its Pod rolled when idle, token, endpoint and workspace kept", async () => {
    const first = (await get(handler, MOVER_KEY, "moving")).body;
    expect(first.plan).toBe("free");
    const oldPod = await eventually(async () => {
      const pod = await kube.pods.get(first.name);
      return pod?.metadata?.uid ? pod : undefined;
    }, "the free plan's Pod");
    writeKeys("pro");
    const moved = await eventually(async () => {
      const answer = await get(handler, MOVER_KEY, "moving");
      return answer.body.plan === "pro" ? answer.body : undefined;
    }, "the new plan to be recorded");
    expect(moved).toMatchObject({ name: first.name, created: false, endpoint: first.endpoint });
    const clientPod = await kube.clientPods.get(first.name);
    expect(clientPod?.spec).toMatchObject({
      plan: "pro",
      idleTimeoutSeconds: 7200,
      maxLifetimeSeconds: 86_400,
      // Its Pod is still the one made from the free plan's template, until rolled.
      podTemplate: "gptme-client",
    });
    const pod = await kube.pods.get(first.name);
    expect(pod?.metadata?.uid).toBe(oldPod?.metadata?.uid);
    expect(pod?.metadata?.labels?.["gptme.ai/plan"]).toBe("pro");
    // The workspace grew to the new plan's size: its class allows expansion.
    expect((await kube.workspaces.get(first.name))?.spec?.resources?.requests?.storage).toBe("2Gi");
    // Outdated: its revision is not the one the pro plan's template gives.
    const detail = await admin(`/admin/pods/${first.name}`);
    expect(detail).toMatchObject({ plan: "pro", outdated: true });

    // The reaper's rollout replaces the Pod (it reads the plans, as the handler does).
    const plans = loadHandlerConfig({
      env: { CLIENT_AUTH: "open", PLANS_FILE: join(dir, "plans.yaml") },
      readFile: (path) => readFileSync(path, "utf8"),
    }).plans.current();
    await kube.clientPods.patchStatus(first.name, {
      lastActivity: new Date(Date.now() - 20 * 60_000).toISOString(),
    });
    const { summary } = await reapOnce(kube, {
      probe: false,
      plans,
      rollout: {
        idleMs: 10 * 60_000,
        max: 10,
        revision: { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi", workspaces: true },
      },
    });
    expect(summary).toMatchObject({ outdated: 1, deleted: 0, failed: 0 });
    await eventually(
      async () =>
        (await kube.pods.get(first.name))?.metadata?.uid === oldPod?.metadata?.uid
          ? undefined
          : true,
      "the outdated Pod to go",
    );
    // The next request starts it from the pro plan's template, under the same token.
    const back = await eventually(async () => {
      const answer = await get(handler, MOVER_KEY, "moving");
      const now = await kube.pods.get(first.name);
      return now && !now.metadata?.deletionTimestamp ? { answer, now } : undefined;
    }, "the Pod made from the new template");
    expect(back.answer.body).toMatchObject({
      name: first.name,
      plan: "pro",
      endpoint: first.endpoint,
      workspace: { name: first.workspace.name },
    });
    expect(back.now.spec?.containers[0]?.image).toBe("ghcr.io/gptme/gptme-server:pro");
    expect((await kube.clientPods.get(first.name))?.spec.podTemplate).toBe("gptme-client-pro");
    const after = await admin(`/admin/pods/${first.name}`);
    expect(after).toMatchObject({ outdated: false, revision: podRevisionOf(back.now) });
  });

  it("leaves a workspace whose class cannot grow as it is, and says so in admin", async () => {
    // Through the replica whose workspaces are on the cluster's default class.
    const first = await get(fixedClass, OTHER_KEY, "plain");
    expect(first.body.plan).toBe("free");
    const name = first.body.name;
    await eventually(
      async () => ((await kube.workspaces.get(name))?.status?.phase === "Bound" ? true : undefined),
      "its workspace to be bound",
    );
    writeKeys("pro", "pro");
    await eventually(
      async () =>
        (await get(fixedClass, OTHER_KEY, "plain")).body.plan === "pro" ? true : undefined,
      "the move to pro",
    );
    const claim = await kube.workspaces.get(name);
    expect(claim?.spec?.resources?.requests?.storage).toBe("1Gi");
    const workspaces = await admin(`/admin/workspaces?client=${clientIdOf(OTHER_KEY)}`);
    expect(workspaces.items.find((w: { name: string }) => w.name === name)).toMatchObject({
      size: "1Gi",
      wantedSize: "2Gi",
      plan: "free",
    });
  });
});
