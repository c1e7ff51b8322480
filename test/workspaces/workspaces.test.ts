import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { workspaceDir } from "../../scripts/lib/pod-mounts.js";
import { ANNOTATION_PHASE } from "../../shared/instance/record.js";
import { clientPodNames, eventually } from "../support/cluster.js";
import { startHandler } from "../support/fleet.js";
import { reapOnce } from "../support/reaper.js";
import { gptme, KEY, startWorkspacesFleet, type WorkspacesFleet } from "../support/workspaces.js";

// Workspaces through an instance's life: made, kept through the reaper and a delete, purged
// on request, protected while mounted. The admin's view of them: admin-workspaces.test.ts.
describe("workspaces outlive their instances", () => {
  let fleet: WorkspacesFleet;
  // Each test reads the fleet's parts after beforeAll made it.
  const get = (id: string, wait?: number) => fleet.get(id, wait);
  const remove = (id: string, query?: string) => fleet.remove(id, query);
  const idleSince = (name: string, ago: number) =>
    fleet.kube.clientPods.patchStatus(name, {
      lastActivity: new Date(Date.now() - ago).toISOString(),
    });

  beforeAll(async () => {
    fleet = await startWorkspacesFleet("workspaces");
  });

  afterEach(() => fleet.stopServers());

  afterAll(() => fleet?.close());

  it("gives a new instance its own claim, owned by nobody, and says it is new", async () => {
    const { status, body } = await get("fresh");
    expect(status).toBe(202);
    expect(body).toMatchObject({ created: true, workspace: { name: body.name, state: "new" } });
    const claim = await fleet.kube.workspaces.get(body.name);
    expect(claim?.metadata?.ownerReferences).toBeUndefined();
    expect(claim?.metadata?.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      "gptme.ai/instance": "fresh",
    });
    // Bound through the cluster's default StorageClass (the claim's status may trail the
    // volume's binding, which the scheduler already waited for).
    await eventually(
      async () =>
        (await fleet.kube.workspaces.get(body.name))?.status?.phase === "Bound" ? true : undefined,
      "the claim to be bound",
    );
    expect(claim?.spec?.resources?.requests?.storage).toBe("1Gi");
    const pod = await fleet.kube.pods.get(body.name);
    expect(pod?.spec?.volumes).toContainEqual({
      name: "workspace",
      persistentVolumeClaim: { claimName: body.name },
    });
    // The first request after the Pod runs records its phase (PHASE follows the Pod); from
    // then on a warm request reads the Pod alone and still knows the workspace.
    await eventually(
      async () =>
        (await fleet.kube.pods.get(body.name))?.status?.phase === "Running" ? true : undefined,
      "the Pod to run",
    );
    await get("fresh");
    // That request's reads come from the API server's watch cache: the next one is warm once
    // the cache shows the phase it recorded (moments later; longer under load).
    await eventually(
      async () =>
        (await fleet.kube.pods.get(body.name, { fromCache: true }))?.metadata?.annotations?.[
          ANNOTATION_PHASE
        ] === "Running"
          ? true
          : undefined,
      "the watch cache to show the recorded phase",
    );
    fleet.handler.counter.reset();
    expect((await get("fresh")).body.workspace).toEqual({ name: body.name, state: "new" });
    expect(fleet.handler.counter.calls).toEqual(["get pods"]);
  });

  it("keeps the user's conversations through the reaper: the next instance finds them", async () => {
    const first = (await get("lunch")).body;
    const server = await fleet.serve(first.name);
    const put = await gptme(server, "conversations/lunch-notes", {
      method: "PUT",
      body: JSON.stringify({ messages: [{ role: "user", content: "remember the soup" }] }),
    });
    expect(put.status).toBe(200);
    // gptme-server wrote it into the directory behind the instance's claim.
    const dir = await workspaceDir(fleet.core, fleet.namespace, first.name);
    expect(readdirSync(join(dir, ".local/share/gptme/logs"))).toContain("lunch-notes");

    // The user goes to lunch: idle past the timeout, its gptme-server not working.
    await idleSince(first.name, 2 * 3600_000);
    const before = Date.now();
    const { summary, lines } = await reapOnce(fleet.kube);
    expect(summary).toMatchObject({ deleted: 1, failed: 0 });
    expect(lines.find((l) => l.name === first.name)).toMatchObject({ reason: "idle" });
    await server.stop();
    expect(await clientPodNames(fleet.namespace)).not.toContain(first.name);
    const kept = await fleet.kube.workspaces.get(first.name);
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
    const pod = await fleet.kube.pods.get(second.name);
    expect(pod?.spec?.volumes).toContainEqual({
      name: "workspace",
      persistentVolumeClaim: { claimName: first.name },
    });
    expect(await workspaceDir(fleet.core, fleet.namespace, second.name)).toBe(dir);
    const again = await fleet.serve(second.name);
    const listed = await (await gptme(again, "conversations")).json();
    expect(JSON.stringify(listed)).toContain("lunch-notes");
    const notes = await (await gptme(again, "conversations/lunch-notes")).json();
    expect(JSON.stringify(notes)).toContain("remember the soup");
  });

  it("keeps the workspace on delete, and purges it only when asked, instance or not", async () => {
    const { body } = await get("purge-me");
    const dir = await workspaceDir(fleet.core, fleet.namespace, body.name);
    const kept = await remove("purge-me");
    expect(kept).toEqual({
      status: 200,
      body: { name: body.name, deleted: true, workspace: "kept" },
    });
    expect(await fleet.kube.workspaces.get(body.name)).toBeDefined();
    expect(existsSync(dir)).toBe(true);

    // The instance is gone; its workspace can still be purged.
    const purged = await remove("purge-me", "?purge=true");
    expect(purged).toEqual({
      status: 200,
      body: { name: body.name, deleted: true, workspace: "purged" },
    });
    // The claim goes, and with it the volume and its directory (reclaim policy Delete).
    await eventually(
      async () => ((await fleet.kube.workspaces.get(body.name)) ? undefined : true),
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

  it("lets Kubernetes keep a claim a live Pod mounts, even when it is deleted (pvc-protection)", async () => {
    const { body } = await get("protected");
    const server = await fleet.serve(body.name);
    await gptme(server, "conversations/still-here", {
      method: "PUT",
      body: JSON.stringify({ messages: [] }),
    });
    await fleet.core.deleteNamespacedPersistentVolumeClaim({
      name: body.name,
      namespace: fleet.namespace,
    });
    await new Promise((r) => setTimeout(r, 3_000));
    const held = await fleet.kube.workspaces.get(body.name);
    expect(held?.metadata?.deletionTimestamp).toBeDefined();
    expect(held?.metadata?.finalizers).toContain("kubernetes.io/pvc-protection");
    // The instance still works, its data still there.
    expect((await get("protected", 30)).status).toBe(200);
    expect((await gptme(server, "conversations/still-here")).status).toBe(200);
    // Once its Pod is gone, so is the claim.
    await remove("protected");
    await eventually(
      async () => ((await fleet.kube.workspaces.get(body.name)) ? undefined : true),
      "the claim to go with its last Pod",
    );
  });

  it("with WORKSPACES=off, makes no claim and mounts only what the template says, as before", async () => {
    const off = startHandler(fleet.namespace, { WORKSPACES: "off" });
    try {
      off.counter.reset();
      const response = await off.request("/instances/no-workspace?wait=0", { apiKey: KEY });
      const body = await response.json();
      expect(response.status).toBe(202);
      expect(body.workspace).toBeNull();
      expect(off.counter.calls.filter((c) => c.endsWith("persistentvolumeclaims"))).toEqual([]);
      expect(await fleet.kube.workspaces.get(body.name)).toBeUndefined();
      expect((await fleet.kube.pods.get(body.name))?.spec?.volumes).toBeUndefined();
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
    const limited = startHandler(fleet.namespace, { MAX_INSTANCES_PER_CLIENT: "1" });
    const key = "workspaces-limit-key-01";
    const request = (id: string, method = "GET") =>
      limited.request(`/instances/${id}?wait=0`, { apiKey: key, method });
    try {
      expect([200, 202]).toContain((await request("one")).status);
      expect((await request("two")).status).toBe(429);
      expect((await request("one", "DELETE")).status).toBe(200);
      expect([200, 202]).toContain((await request("two")).status);
      const workspaces = await fleet.kube.workspaces.list({
        labelSelector: "gptme.ai/instance in (one,two)",
      });
      expect(workspaces.items).toHaveLength(2);
    } finally {
      limited.close();
    }
  });
});
