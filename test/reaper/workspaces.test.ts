import { CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ReapOptions } from "../../reaper/options.js";
import type { ReapAction } from "../../reaper/plan.js";
import type { Kube } from "../../shared/kube/client.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubeconfigPath,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";
import { kubectl } from "../support/kubectl.js";
import { lastUsedAgo, reapOnce } from "../support/reaper.js";

const KEY = "reaper-workspaces-key-01";
const DAY = 86_400_000;
const RETENTION = 30 * DAY;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

// The reaper's workspace-retention pass on real claims: it deletes a workspace no instance
// has used for WORKSPACE_RETENTION, and never one that is in use or comes back into use
// while it decides.
describe("reaper: workspace retention", () => {
  let namespace: string;
  let handler: TestHandler;
  let kube: Kube;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const servers: GptmeServer[] = [];

  // wait=0 by default: nothing answers at a pod IP until a test runs its gptme-server.
  const get = async (id: string, wait = 0) =>
    (await handler.request(`/instances/${id}?wait=${wait}`, { apiKey: KEY })).json();
  const end = (id: string) =>
    handler.request(`/instances/${id}`, { apiKey: KEY, method: "DELETE" });
  const unusedFor = (name: string, ago: number) => lastUsedAgo(namespace, name, ago);
  const reapNow = (options: Partial<ReapOptions> = {}) =>
    reapOnce(kube, { workspaceRetentionMs: RETENTION, ...options });
  const isGone = async (name: string) => {
    const claim = await kube.workspaces.get(name);
    return claim === undefined || Boolean(claim.metadata?.deletionTimestamp);
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper-workspaces");
    await installTemplate(namespace);
    handler = startHandler(namespace);
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

  it("deletes a workspace unused past the retention, keeps a recent one and one in use", async () => {
    const old = (await get("old", 0)).name;
    const recent = (await get("recent", 0)).name;
    const running = (await get("running", 0)).name;
    await end("old");
    await end("recent");
    await unusedFor(old, RETENTION + DAY);
    await unusedFor(recent, RETENTION - DAY);
    // A running instance's claim records its last use when it starts; by that record alone it
    // would be old, but its instance uses it.
    await unusedFor(running, RETENTION + DAY);

    const dry = await reapNow({ dryRun: true });
    expect(dry.lines.filter((l) => l.reason === "workspace-retention")).toEqual([
      expect.objectContaining({ kind: "workspace", name: old, result: "deleted", dryRun: true }),
    ]);
    expect(await isGone(old)).toBe(false);

    const { summary, lines } = await reapNow();
    expect(summary).toMatchObject({ workspaces: 3, deleted: 1, failed: 0 });
    expect(lines).toEqual([
      expect.objectContaining({
        kind: "workspace",
        name: old,
        reason: "workspace-retention",
        result: "deleted",
        clientId: expect.stringMatching(/^[0-9a-f]{32}$/),
      }),
    ]);
    expect(lines[0].idleSeconds).toBeGreaterThanOrEqual((RETENTION + DAY) / 1000 - 60);
    await eventually(
      async () => ((await kube.workspaces.get(old)) ? undefined : true),
      "old to go",
    );
    expect(await isGone(recent)).toBe(false);
    expect(await isGone(running)).toBe(false);
  });

  it("never deletes a claim a live Pod mounts, even one whose ClientPod is gone", async () => {
    const { name } = await get("orphaned");
    // The ClientPod goes but leaves its Pod running (kubectl delete --cascade=orphan).
    kubectl(kubeconfigPath(), [
      "-n",
      namespace,
      "delete",
      "clientpod",
      name,
      "--cascade=orphan",
      "--wait=true",
    ]);
    await unusedFor(name, RETENTION + DAY);
    const { lines } = await reapNow();
    // The orphaned Pod goes this pass; the claim it mounted when the pass read the fleet stays.
    expect(lines.find((l) => l.kind === "pod" && l.name === name)).toMatchObject({
      reason: "orphan",
      result: "deleted",
    });
    expect(lines.some((l) => l.kind === "workspace")).toBe(false);
    expect(await isGone(name)).toBe(false);
    // With the Pod gone, the next pass may take it.
    await eventually(async () => ((await kube.pods.get(name)) ? undefined : true), "the pod to go");
    const next = await reapNow();
    expect(next.lines.find((l) => l.kind === "workspace")).toMatchObject({
      name,
      result: "deleted",
    });
  });

  it("never deletes a workspace its user comes back to while the reaper decides", async () => {
    const first = await get("returning");
    const server = await runInstancePod(namespace, first.name);
    servers.push(server);
    await fetch(`${server.url}/api/v2/conversations/before-lunch`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [] }),
    });
    await server.stop();
    await end("returning");
    await unusedFor(first.name, RETENTION + DAY);

    // The race made deterministic: after the reaper judged the claim (unused for 31 days),
    // before its delete, the user asks for the instance again.
    let returned: { name: string; workspace: unknown } | undefined;
    const beforeWrite = async (action: ReapAction) => {
      if (action.kind === "workspace" && action.name === first.name) {
        returned = await get("returning");
      }
    };
    const { summary, lines } = await reapNow({ beforeWrite });
    expect(lines.find((l) => l.name === first.name)).toMatchObject({
      kind: "workspace",
      result: "skipped",
      detail: "changed since read",
    });
    expect(summary).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
    expect(returned?.workspace).toEqual({ name: first.name, state: "kept" });
    expect(await isGone(first.name)).toBe(false);
    const again = await runInstancePod(namespace, first.name);
    servers.push(again);
    const listed = await (
      await fetch(`${again.url}/api/v2/conversations`, {
        headers: { authorization: `Bearer ${again.token}` },
      })
    ).text();
    expect(listed).toContain("before-lunch");
  });

  it("starts a returning instance on a new workspace once a retention delete has begun", async () => {
    const { name } = await get("late");
    await end("late");
    // A claim already being deleted, held by a finalizer of our own so the test can see the
    // handler wait for it (the pvc-protection finalizer goes as soon as no Pod mounts it).
    await core.patchNamespacedPersistentVolumeClaim(
      { name, namespace, body: { metadata: { finalizers: ["gptme.ai/test-hold"] } } },
      mergePatch,
    );
    await core.deleteNamespacedPersistentVolumeClaim({ name, namespace });
    const response = await handler.request("/instances/late?wait=2", { apiKey: KEY });
    expect(response.status).toBe(202);
    expect((await response.json()).connection).toBeNull();
    expect(await kube.pods.get(name)).toBeUndefined();
    await core.patchNamespacedPersistentVolumeClaim(
      { name, namespace, body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    const body = await get("late");
    // Its Pod is made over a new claim (starting: nothing answers at its pod IP here).
    expect(body).toMatchObject({ status: "starting", workspace: { name, state: "new" } });
    expect(await kube.pods.get(name)).toBeDefined();
  });
});
