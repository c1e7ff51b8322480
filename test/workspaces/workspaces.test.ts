import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { workspaceDir } from "../../scripts/lib/pod-mounts.js";
import { ANNOTATION_PHASE } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import {
  adminKube,
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";
import { lastUsedAgo, reapOnce } from "../support/reaper.js";

const KEY = "workspaces-key-000001";
const ADMIN_TOKEN = "workspaces-admin-token-0001";

// Workspaces on the local cluster: claims bind through the cluster's default StorageClass
// (Kubernetes' own hostPath provisioner, scripts/cluster.sh), and the real gptme-server runs
// at each KWOK pod's loopback IP with its data on the directory behind the bound volume, as a
// kubelet would mount it (runInstancePod).
describe("workspaces outlive their instances", () => {
  let namespace: string;
  let handler: TestHandler;
  let kube: Kube;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const servers: GptmeServer[] = [];

  // wait=0 by default: nothing answers at a pod IP until a test runs its gptme-server, and
  // ready means it answers (202 until then).
  const get = async (id: string, wait = 0) => {
    const response = await handler.request(`/instances/${id}?wait=${wait}`, { apiKey: KEY });
    return { status: response.status, body: await response.json() };
  };
  const remove = async (id: string, query = "") => {
    const response = await handler.request(`/instances/${id}${query}`, {
      apiKey: KEY,
      method: "DELETE",
    });
    return { status: response.status, body: await response.json() };
  };
  const serve = async (name: string) => {
    const server = await runInstancePod(namespace, name);
    servers.push(server);
    return server;
  };
  const gptme = (server: GptmeServer, path: string, init: RequestInit = {}) =>
    fetch(`${server.url}/api/v2/${path}`, {
      ...init,
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    });
  const idleSince = (name: string, ago: number) =>
    kube.clientPods.patchStatus(name, { lastActivity: new Date(Date.now() - ago).toISOString() });

  beforeAll(async () => {
    namespace = await createTestNamespace("workspaces");
    await installTemplate(namespace);
    handler = startHandler(namespace, { ADMIN_TOKEN });
    kube = adminKube(namespace);
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  afterAll(async () => {
    handler?.close();
    kube?.close();
    await deleteTestNamespace(namespace);
  });

  it("gives a new instance its own claim, owned by nobody, and says it is new", async () => {
    const { status, body } = await get("fresh");
    expect(status).toBe(202);
    expect(body).toMatchObject({ created: true, workspace: { name: body.name, state: "new" } });
    const claim = await kube.workspaces.get(body.name);
    expect(claim?.metadata?.ownerReferences).toBeUndefined();
    expect(claim?.metadata?.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/instance": "fresh",
    });
    // Bound through the cluster's default StorageClass (the claim's status may trail the
    // volume's binding, which the scheduler already waited for).
    await eventually(
      async () =>
        (await kube.workspaces.get(body.name))?.status?.phase === "Bound" ? true : undefined,
      "the claim to be bound",
    );
    expect(claim?.spec?.resources?.requests?.storage).toBe("1Gi");
    const pod = await kube.pods.get(body.name);
    expect(pod?.spec?.volumes).toContainEqual({
      name: "workspace",
      persistentVolumeClaim: { claimName: body.name },
    });
    // The first request after the Pod runs records its phase (PHASE follows the Pod); from
    // then on a warm request reads the Pod alone and still knows the workspace.
    await eventually(
      async () =>
        (await kube.pods.get(body.name))?.status?.phase === "Running" ? true : undefined,
      "the Pod to run",
    );
    await get("fresh");
    // That request's reads come from the API server's watch cache: the next one is warm once
    // the cache shows the phase it recorded (moments later; longer under load).
    await eventually(
      async () =>
        (await kube.pods.get(body.name, { fromCache: true }))?.metadata?.annotations?.[
          ANNOTATION_PHASE
        ] === "Running"
          ? true
          : undefined,
      "the watch cache to show the recorded phase",
    );
    handler.counter.reset();
    expect((await get("fresh")).body.workspace).toEqual({ name: body.name, state: "new" });
    expect(handler.counter.calls).toEqual(["get pods"]);
  });

  it("keeps the user's conversations through the reaper: the next instance finds them", async () => {
    const first = (await get("lunch")).body;
    const server = await serve(first.name);
    const put = await gptme(server, "conversations/lunch-notes", {
      method: "PUT",
      body: JSON.stringify({ messages: [{ role: "user", content: "remember the soup" }] }),
    });
    expect(put.status).toBe(200);
    // gptme-server wrote it into the directory behind the instance's claim.
    const dir = await workspaceDir(core, namespace, first.name);
    expect(readdirSync(join(dir, ".local/share/gptme/logs"))).toContain("lunch-notes");

    // The user goes to lunch: idle past the timeout, its gptme-server not working.
    await idleSince(first.name, 2 * 3600_000);
    const before = Date.now();
    const { summary, lines } = await reapOnce(kube);
    expect(summary).toMatchObject({ deleted: 1, failed: 0 });
    expect(lines.find((l) => l.name === first.name)).toMatchObject({ reason: "idle" });
    await server.stop();
    expect(await clientPodNames(namespace)).not.toContain(first.name);
    const kept = await kube.workspaces.get(first.name);
    expect(kept?.metadata?.deletionTimestamp).toBeUndefined();
    expect(
      Date.parse(kept?.metadata?.annotations?.["gptme.ai/last-used"] ?? ""),
    ).toBeGreaterThanOrEqual(before - 1_000);

    // Back from lunch: a new instance (new ClientPod, new Pod, new token) over the same claim.
    const second = (await get("lunch")).body;
    expect(second).toMatchObject({
      name: first.name,
      created: true,
      workspace: { name: first.name, state: "kept" },
    });
    expect(second.endpoint.token).not.toBe(first.endpoint.token);
    const pod = await kube.pods.get(second.name);
    expect(pod?.spec?.volumes).toContainEqual({
      name: "workspace",
      persistentVolumeClaim: { claimName: first.name },
    });
    expect(await workspaceDir(core, namespace, second.name)).toBe(dir);
    const again = await serve(second.name);
    const listed = await (await gptme(again, "conversations")).json();
    expect(JSON.stringify(listed)).toContain("lunch-notes");
    const notes = await (await gptme(again, "conversations/lunch-notes")).json();
    expect(JSON.stringify(notes)).toContain("remember the soup");
  });

  it("keeps the workspace on delete, and purges it only when asked, instance or not", async () => {
    const { body } = await get("purge-me");
    const dir = await workspaceDir(core, namespace, body.name);
    const kept = await remove("purge-me");
    expect(kept).toEqual({
      status: 200,
      body: { name: body.name, deleted: true, workspace: "kept" },
    });
    expect(await kube.workspaces.get(body.name)).toBeDefined();
    expect(existsSync(dir)).toBe(true);

    // The instance is gone; its workspace can still be purged.
    const purged = await remove("purge-me", "?purge=true");
    expect(purged).toEqual({
      status: 200,
      body: { name: body.name, deleted: true, workspace: "purged" },
    });
    // The claim goes, and with it the volume and its directory (reclaim policy Delete).
    await eventually(
      async () => ((await kube.workspaces.get(body.name)) ? undefined : true),
      "the purged claim to be gone",
    );
    await eventually(async () => (existsSync(dir) ? undefined : true), "its directory to go");
    expect(await remove("purge-me", "?purge=true")).toMatchObject({
      status: 404,
      body: { code: "not_found" },
    });
    expect(await remove("purge-me", "?purge=yes")).toMatchObject({
      status: 400,
      body: { code: "invalid_purge" },
    });
  });

  it("purges with the instance in one admin call", async () => {
    const { body } = await get("admin-purge");
    const response = await handler.request(`/admin/pods/${body.name}?purge=true`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(await response.json()).toEqual({ name: body.name, deleted: true, workspace: "purged" });
    expect(await clientPodNames(namespace)).not.toContain(body.name);
    await eventually(
      async () => ((await kube.workspaces.get(body.name)) ? undefined : true),
      "the purged claim to be gone",
    );
  });

  it("lists workspaces for the admin: client, instance, size, last use, mounted, paged", async () => {
    const admin = (query: string) =>
      handler.request(`/admin/workspaces${query}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
    const running = (await get("listed-running")).body;
    const ended = (await get("listed-ended", 0)).body;
    await remove("listed-ended");
    await lastUsedAgo(namespace, ended.name, 10 * 86_400_000);
    const clientId = (await kube.clientPods.get(running.name))?.spec.clientId;
    const { items } = await (await admin(`?client=${clientId}`)).json();
    const byName = new Map(items.map((w: { name: string }) => [w.name, w]));
    expect(byName.get(running.name)).toMatchObject({
      clientId,
      instanceId: "listed-running",
      size: "1Gi",
      storageClass: "local-hostpath",
      phase: "Bound",
      mounted: true,
      deletableAt: null,
      terminating: false,
    });
    const endedItem = byName.get(ended.name) as { lastUsed: string; deletableAt: string };
    expect(endedItem).toMatchObject({ instanceId: "listed-ended", mounted: false });
    // Unused for 10 days of the 30-day retention: deletable 20 days from now.
    const left = Date.parse(endedItem.deletableAt) - Date.now();
    expect(left).toBeGreaterThan(19.9 * 86_400_000);
    expect(left).toBeLessThan(20.1 * 86_400_000);
    expect(Date.parse(endedItem.deletableAt) - Date.parse(endedItem.lastUsed)).toBe(
      30 * 86_400_000,
    );

    // Paged by the API server: one at a time, every workspace exactly once.
    const seen: string[] = [];
    let token = "";
    do {
      const page = await (
        await admin(`?client=${clientId}&limit=1${token ? `&continue=${token}` : ""}`)
      ).json();
      expect(page.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.items.map((w: { name: string }) => w.name));
      token = page.continue;
    } while (token);
    expect(seen.sort()).toEqual(items.map((w: { name: string }) => w.name).sort());
    expect((await admin("?limit=0")).status).toBe(400);
    expect((await handler.request("/admin/workspaces")).status).toBe(401);
  });

  it("lets Kubernetes keep a claim a live Pod mounts, even when it is deleted (pvc-protection)", async () => {
    const { body } = await get("protected");
    const server = await serve(body.name);
    await gptme(server, "conversations/still-here", {
      method: "PUT",
      body: JSON.stringify({ messages: [] }),
    });
    await core.deleteNamespacedPersistentVolumeClaim({ name: body.name, namespace });
    await new Promise((r) => setTimeout(r, 3_000));
    const held = await kube.workspaces.get(body.name);
    expect(held?.metadata?.deletionTimestamp).toBeDefined();
    expect(held?.metadata?.finalizers).toContain("kubernetes.io/pvc-protection");
    // The instance still works, its data still there.
    expect((await get("protected", 30)).status).toBe(200);
    expect((await gptme(server, "conversations/still-here")).status).toBe(200);
    // Once its Pod is gone, so is the claim.
    await remove("protected");
    await eventually(
      async () => ((await kube.workspaces.get(body.name)) ? undefined : true),
      "the claim to go with its last Pod",
    );
  });

  it("with WORKSPACES=off, makes no claim and mounts only what the template says, as before", async () => {
    const off = startHandler(namespace, { WORKSPACES: "off" });
    try {
      off.counter.reset();
      const response = await off.request("/instances/no-workspace?wait=0", { apiKey: KEY });
      const body = await response.json();
      expect(response.status).toBe(202);
      expect(body.workspace).toBeNull();
      expect(off.counter.calls.filter((c) => c.endsWith("persistentvolumeclaims"))).toEqual([]);
      expect(await kube.workspaces.get(body.name)).toBeUndefined();
      expect((await kube.pods.get(body.name))?.spec?.volumes).toBeUndefined();
      const deleted = await off.request("/instances/no-workspace", {
        apiKey: KEY,
        method: "DELETE",
      });
      expect(await deleted.json()).toMatchObject({ deleted: true, workspace: null });
    } finally {
      off.close();
    }
  });

  it("does not count kept workspaces against the client's instance limit", async () => {
    const limited = startHandler(namespace, { MAX_INSTANCES_PER_CLIENT: "1" });
    const key = "workspaces-limit-key-01";
    const request = (id: string, method = "GET") =>
      limited.request(`/instances/${id}?wait=0`, { apiKey: key, method });
    try {
      expect([200, 202]).toContain((await request("one")).status);
      expect((await request("two")).status).toBe(429);
      expect((await request("one", "DELETE")).status).toBe(200);
      expect([200, 202]).toContain((await request("two")).status);
      const workspaces = await kube.workspaces.list({
        labelSelector: "gptme.ai/instance in (one,two)",
      });
      expect(workspaces.items).toHaveLength(2);
    } finally {
      limited.close();
    }
  });
});
