import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientPodNames, eventually } from "../support/cluster.js";
import { lastUsedAgo } from "../support/reaper.js";
import { ADMIN_TOKEN, startWorkspacesFleet, type WorkspacesFleet } from "../support/workspaces.js";

// The admin's view of workspaces: purged with their instance in one call, listed with their
// client, size, last use and whether a Pod mounts them, paged by the API server.
describe("workspaces for the admin", () => {
  let fleet: WorkspacesFleet;
  const get = (id: string, wait?: number) => fleet.get(id, wait);
  const remove = (id: string, query?: string) => fleet.remove(id, query);

  beforeAll(async () => {
    fleet = await startWorkspacesFleet("workspaces-admin");
  });

  afterAll(() => fleet?.close());

  it("purges with the instance in one admin call", async () => {
    const { body } = await get("admin-purge");
    const response = await fleet.handler.request(`/admin/pods/${body.name}?purge=true`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(await response.json()).toEqual({ name: body.name, deleted: true, workspace: "purged" });
    expect(await clientPodNames(fleet.namespace)).not.toContain(body.name);
    await eventually(
      async () => ((await fleet.kube.workspaces.get(body.name)) ? undefined : true),
      "the purged claim to be gone",
    );
  });

  it("lists workspaces for the admin: client, instance, size, last use, mounted, paged", async () => {
    const running = (await get("listed-running")).body;
    const ended = (await get("listed-ended", 0)).body;
    await remove("listed-ended");
    await lastUsedAgo(fleet.namespace, ended.name, 10 * 86_400_000);
    const clientId = (await fleet.kube.clientPods.get(running.name))?.spec.clientId;
    const { items } = await (await fleet.admin(`?client=${clientId}`)).json();
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
        await fleet.admin(`?client=${clientId}&limit=1${token ? `&continue=${token}` : ""}`)
      ).json();
      expect(page.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.items.map((w: { name: string }) => w.name));
      token = page.continue;
    } while (token);
    expect(seen.sort()).toEqual(items.map((w: { name: string }) => w.name).sort());
    expect((await fleet.admin("?limit=0")).status).toBe(400);
    expect((await fleet.handler.request("/admin/workspaces")).status).toBe(401);
  });
});
