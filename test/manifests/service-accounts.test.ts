import { randomBytes } from "node:crypto";
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reap } from "../../reaper/reap.js";
import { indexMember } from "../../shared/actions/pool-members.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import { entriesOf, POOL_INDEX_NAME } from "../../shared/pool/member-index.js";
import { adminKube, adminKubeConfig } from "../support/cluster.js";
import { serviceAccountKubeConfig } from "../support/credentials.js";
import { LogCapture, startHandler } from "../support/fleet.js";
import { EventStream, runInstancePod } from "../support/gptme.js";
import { installFleetManifests, FLEET_NAMESPACE as NAMESPACE } from "../support/manifests.js";
import { poolPass } from "../support/pool.js";

const KEY = `deploy-key-${randomBytes(4).toString("hex")}`;

/**
 * The deployment's ServiceAccounts on a real API server: the handler and the reaper each do
 * everything they do with their own, and nothing more (their RBAC is least privilege).
 */
describe("the deployment's ServiceAccounts", () => {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const created: string[] = [];

  beforeAll(installFleetManifests);

  afterAll(async () => {
    // Workspaces outlive their instances: this file's go with them.
    await core.deleteCollectionNamespacedPersistentVolumeClaim({
      namespace: NAMESPACE,
      labelSelector: `gptme.ai/client=${clientIdOf(KEY)}`,
    });
    for (const name of created) {
      await custom
        .deleteNamespacedCustomObject({
          group: "gptme.ai",
          version: "v1",
          namespace: NAMESPACE,
          plural: "clientpods",
          name,
        })
        .catch(() => undefined);
    }
  });

  it("lets the handler do everything it does with its own ServiceAccount, and no more", async () => {
    const kc = await serviceAccountKubeConfig(NAMESPACE, "fleet-handler");
    const handler = startHandler(NAMESPACE, { ADMIN_TOKEN: "deploy-test-admin-token" }, kc);
    const admin = { authorization: "Bearer deploy-test-admin-token" };
    try {
      created.push(
        instanceNameOf(clientIdOf(KEY), "rbac"),
        instanceNameOf(clientIdOf(KEY), "gone"),
      );
      // Nothing answers at a KWOK pod's IP here: starting (202) is the true answer.
      expect((await handler.request("/instances/rbac?wait=0", { apiKey: KEY })).status).toBe(202);
      expect((await handler.request("/instances/rbac?wait=1", { apiKey: KEY })).status).toBe(202);
      expect((await handler.request("/instances/gone?wait=0", { apiKey: KEY })).status).toBe(202);
      expect(
        (await (await handler.request("/instances", { apiKey: KEY })).json()).items,
      ).toHaveLength(2);
      // Delete keeps the workspace (a patch of its last use); purge deletes it, instance or not.
      const deleted = await handler.request("/instances/gone", { apiKey: KEY, method: "DELETE" });
      expect(await deleted.json()).toMatchObject({ deleted: true, workspace: "kept" });
      const purged = await handler.request("/instances/gone?purge=true", {
        apiKey: KEY,
        method: "DELETE",
      });
      expect(await purged.json()).toMatchObject({ deleted: true, workspace: "purged" });
      const workspaces = await (
        await handler.request(`/admin/workspaces?client=${clientIdOf(KEY)}`, { headers: admin })
      ).json();
      expect(workspaces.items.map((w: { instanceId: string }) => w.instanceId)).toContain("rbac");
      const listed = await (
        await handler.request(`/admin/pods?client=${clientIdOf(KEY)}`, { headers: admin })
      ).json();
      expect(listed.items).toHaveLength(1);
      const name = listed.items[0].name;
      expect((await handler.request(`/admin/pods/${name}`, { headers: admin })).status).toBe(200);
      expect((await handler.request("/readyz")).status).toBe(200);
      // Sign-in: a login code minted (a ConfigMap created) and exchanged (read, deleted).
      const signin = startHandler(NAMESPACE, { PUBLIC_URL: "https://fleet.example.com" }, kc);
      try {
        // Its pod is starting (nothing answers here): the code is minted all the same.
        const login = await signin.request("/instances/rbac/login?wait=0", {
          apiKey: KEY,
          method: "POST",
        });
        expect(login.status).toBe(202);
        const exchanged = await signin.request("/api/v1/operator/auth/exchange", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ code: (await login.json()).login.code }),
        });
        expect(exchanged.status).toBe(200);
      } finally {
        signin.close();
      }
      // Activity writes and mirror patches, with the interval forced to zero.
      const busy = startHandler(NAMESPACE, { ACTIVITY_INTERVAL: "0" }, kc);
      expect((await busy.request("/instances/rbac?wait=0", { apiKey: KEY })).status).toBe(202);
      busy.close();
      // Least privilege: it creates Secrets and reads only the token key; it can neither
      // list Secrets nor read an instance's token back.
      const asHandler = kc.makeApiClient(CoreV1Api);
      await expect(asHandler.listNamespacedSecret({ namespace: NAMESPACE })).rejects.toMatchObject({
        code: 403,
      });
      const tokenSecret = (
        await adminKubeConfig().makeApiClient(CoreV1Api).listNamespacedSecret({
          namespace: NAMESPACE,
          labelSelector: `gptme.ai/instance=rbac`,
        })
      ).items[0]?.metadata?.name;
      expect(tokenSecret).toMatch(/^gptme-client-[0-9a-f]{16}-token-[0-9a-f]{8}$/);
      await expect(
        asHandler.readNamespacedSecret({ namespace: NAMESPACE, name: tokenSecret ?? "" }),
      ).rejects.toMatchObject({ code: 403 });
      await expect(asHandler.listNamespacedPod({ namespace: "default" })).rejects.toMatchObject({
        code: 403,
      });
    } finally {
      handler.close();
    }
  });

  it("lets the reaper do a pass with its own ServiceAccount, and no more", async () => {
    const kc = await serviceAccountKubeConfig(NAMESPACE, "fleet-reaper");
    const name = instanceNameOf(clientIdOf(KEY), "rbac");
    const busy = instanceNameOf(clientIdOf(KEY), "rbac-busy");
    const unused = instanceNameOf(clientIdOf(KEY), "rbac-unused");
    created.push(busy);
    const handler = startHandler(NAMESPACE);
    expect((await handler.request("/instances/rbac-busy?wait=0", { apiKey: KEY })).status).toBe(
      202,
    );
    // A workspace nobody has used for 40 days, for the retention pass to delete.
    expect((await handler.request("/instances/rbac-unused?wait=0", { apiKey: KEY })).status).toBe(
      202,
    );
    await handler.request("/instances/rbac-unused", { apiKey: KEY, method: "DELETE" });
    handler.close();
    await core.patchNamespacedPersistentVolumeClaim(
      {
        name: unused,
        namespace: NAMESPACE,
        body: {
          metadata: {
            annotations: {
              "gptme.ai/last-used": new Date(Date.now() - 40 * 86_400_000).toISOString(),
            },
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    // A client listens to its busy instance: the reaper keeps it and records why, which
    // takes its one write (the ClientPod's status).
    const server = await runInstancePod(NAMESPACE, busy);
    const abort = new AbortController();
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    for (const instance of [name, busy]) {
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: "gptme.ai",
          version: "v1",
          namespace: NAMESPACE,
          plural: "clientpods",
          name: instance,
          body: { status: { lastActivity: hourAgo } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    }
    const kube = new Kube(credentialsOf(kc), NAMESPACE);
    const admin = adminKube(NAMESPACE);
    /** A change of an instance's spec, as the reaper would make it (it may not). */
    const patchSpec = (instance: string) =>
      kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
        {
          group: "gptme.ai",
          version: "v1",
          namespace: NAMESPACE,
          plural: "clientpods",
          name: instance,
          body: { spec: { idleTimeoutSeconds: 1 } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    try {
      const auth = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
      const put = await fetch(`${server.url}/api/v2/conversations/rbac`, {
        method: "PUT",
        headers: auth,
        body: JSON.stringify({ messages: [] }),
      });
      const { session_id } = (await put.json()) as { session_id: string };
      const stream = new EventStream(
        await fetch(
          `${server.url}/api/v2/conversations/rbac/events?session_id=${session_id}&token=${server.token}`,
          { signal: abort.signal },
        ),
      );
      await stream.next((e) => e.type === "connected", 5_000);
      const summary = await reap(kube, {
        defaults: { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 },
        workspaceRetentionMs: 30 * 24 * 3600_000,
        dryRun: false,
        concurrency: 2,
        now: () => new Date(),
        log: createLogger({ level: "info", name: "fleet-reaper" }, new LogCapture()),
        probe: { timeoutMs: 2_000 },
      });
      expect(summary.failed).toBe(0);
      expect(summary.deleted).toBeGreaterThanOrEqual(2);
      expect(summary.busy).toBe(1);
      // The reaped instance's workspace stays, its last use patched; the unused one went.
      const reapedWorkspace = await admin.workspaces.get(name);
      expect(
        Date.parse(reapedWorkspace?.metadata?.annotations?.["gptme.ai/last-used"] ?? ""),
      ).toBeGreaterThan(Date.parse(hourAgo));
      const retired = await admin.workspaces.get(unused);
      expect(retired === undefined || Boolean(retired.metadata?.deletionTimestamp)).toBe(true);
      const kept = await admin.clientPods.get(busy);
      expect(kept?.status?.lastReap).toMatchObject({ verdict: "busy" });
      expect(kept?.status?.lastActivity?.getTime()).toBeGreaterThan(Date.parse(hourAgo));
      // The status, and nothing else of a ClientPod; no Secret (it needs no instance token).
      await expect(patchSpec(busy)).rejects.toMatchObject({ code: 403 });
      await expect(
        kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: NAMESPACE }),
      ).rejects.toMatchObject({ code: 403 });
      // Secrets by name: only the token key's (every instance's token Secret stays closed).
      expect(await kube.secrets.get(`${name}-token`).catch((e) => e)).toMatchObject({
        status: 403,
      });
      // Its pool step keeps the pool's index clean: an entry of a member that is gone goes.
      const gone = "gptme-pool-00000000000000bb";
      await indexMember(admin, gone, {
        uid: "gone",
        tokenKeyId: "k",
        plan: "default",
        serving: true,
      });
      const pool = await poolPass(NAMESPACE, {}, 0, kc);
      expect(pool).toMatchObject({ failed: 0, unindexed: 1 });
      expect(entriesOf(await admin.configMaps.get(POOL_INDEX_NAME)).has(gone)).toBe(false);
      // It makes pool members (ClientPods among them) but never changes an instance.
      await expect(patchSpec(name)).rejects.toMatchObject({ code: 403 });
    } finally {
      abort.abort();
      await server.stop();
      kube.close();
      admin.close();
    }
  });
});
