import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revisionSettingsOf } from "../../shared/config/load.js";
import type { Kube } from "../../shared/kube/client.js";
import {
  adminKube,
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import {
  bareTemplate,
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { EventStream, type GptmeServer, runInstancePod } from "../support/gptme.js";
import { reapOnce } from "../support/reaper.js";

const KEY = "rollout-key-000001";
const ADMIN = "rollout-admin-token-0001";
const IDLE_MS = 1_000;

// A new gptme-server image in the PodTemplate rolls through the fleet: the reaper replaces
// the Pods of idle instances (never their ClientPods), and the next request starts each
// again from the new template over the same workspace, with the same token.
describe("template revisions and rollouts", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let kube: Kube;
  const servers = new Map<string, GptmeServer>();
  // biome-ignore lint/suspicious/noExplicitAny: instance bodies as a client reads them
  const instances: Record<string, any> = {};
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  let stream: { abort: AbortController } | undefined;

  const admin = async (path: string) => {
    const res = await handler.request(path, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    return res.json();
  };
  const podOf = (name: string) => core.readNamespacedPod({ name, namespace });
  const clientPodOf = async (name: string) =>
    (await custom.getNamespacedCustomObject({
      group: "gptme.ai",
      version: "v1",
      namespace,
      plural: "clientpods",
      name,
    })) as { metadata: { uid: string }; status?: { revision?: string } };
  const pass = (max: number) =>
    reapOnce(kube, {
      rollout: { idleMs: IDLE_MS, max, revision: revisionSettingsOf(handler.config) },
    });
  /** The instance's name, once its Pod has an IP (KWOK gives it one in moments). */
  const withIp = (name: string) =>
    eventually(
      async () => ((await podOf(name).catch(() => undefined))?.status?.podIP ? name : undefined),
      `${name}'s Pod to have an IP`,
    );
  /** Stops an instance's gptme-server as the kubelet stops a deleted Pod's container. */
  const stopServer = async (id: string) => {
    await servers.get(id)?.stop();
    servers.delete(id);
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("rollout");
    await installTemplate(namespace);
    handler = startHandler(namespace, { ADMIN_TOKEN: ADMIN, PUBLIC_URL: "https://fleet.test" });
    http = await listenHandler(handler);
    kube = adminKube(namespace);
    // Ready means its gptme-server answered: a to d get one each (as a kubelet would start
    // them); e never does, and stays starting.
    for (const id of ["a", "b", "c", "d", "e"]) {
      const res = await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY });
      instances[id] = await res.json();
    }
    for (const id of ["a", "b", "c", "d"]) {
      servers.set(id, await runInstancePod(namespace, await withIp(instances[id].name)));
      const ready = await (
        await handler.request(`/instances/${id}?wait=30`, { apiKey: KEY })
      ).json();
      expect(ready.status).toBe("ready");
    }
  }, 180_000);

  afterAll(async () => {
    stream?.abort.abort();
    await Promise.all([...servers.values()].map((s) => s.stop()));
    await http?.close();
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("records the revision on the ClientPod and the Pod, and lists nothing outdated", async () => {
    const name = instances.a.name;
    const revision = (await podOf(name)).metadata?.annotations?.["gptme.ai/revision"];
    expect(revision).toMatch(/^[0-9a-f]{10}$/);
    expect((await clientPodOf(name)).status?.revision).toBe(revision);
    const item = await admin(`/admin/pods/${name}`);
    expect(item).toMatchObject({ revision, outdated: false });
    expect((await admin("/admin/pods?outdated=true")).items).toEqual([]);
    expect(await admin("/admin/rollout")).toMatchObject({
      template: "gptme-client",
      current: revision,
      instances: 5,
      outdated: 0,
      revisions: [{ revision, current: true, instances: 5, outdated: 0 }],
    });
    // The same revision for every instance: nothing per instance goes into it.
    for (const id of ["b", "c", "d", "e"]) {
      expect((await clientPodOf(instances[id].name)).status?.revision).toBe(revision);
    }
  });

  it("lists every instance as outdated once the template's image changes", async () => {
    // A conversation made before the rollout, through the gateway with the instance's token.
    const put = await fetch(
      `${http.url}${instances.a.endpoint.path}/api/v2/conversations/before-rollout`,
      {
        method: "PUT",
        headers: {
          authorization: `Bearer ${instances.a.endpoint.token}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ messages: [{ role: "user", content: "remember me" }] }),
      },
    );
    expect(put.status).toBe(200);
    // b's client keeps an event stream open: its gptme-server is working.
    const b = servers.get("b") as GptmeServer;
    const auth = { authorization: `Bearer ${b.token}`, "content-type": "application/json" };
    const session = (await (
      await fetch(`${b.url}/api/v2/conversations/listening`, {
        method: "PUT",
        headers: auth,
        body: JSON.stringify({ messages: [] }),
      })
    ).json()) as { session_id: string };
    const abort = new AbortController();
    stream = { abort };
    const events = new EventStream(
      await fetch(
        `${b.url}/api/v2/conversations/listening/events?session_id=${session.session_id}&token=${b.token}`,
        { signal: abort.signal },
      ),
    );
    await events.next((e) => e.type === "connected", 5_000);

    const before = await admin("/admin/rollout");
    const next = bareTemplate();
    const container = next.template?.spec?.containers[0];
    if (container) container.image = "ghcr.io/gptme/gptme-server:next";
    await core.replaceNamespacedPodTemplate({ name: "gptme-client", namespace, body: next });

    const after = await admin("/admin/rollout");
    expect(after.current).toMatch(/^[0-9a-f]{10}$/);
    expect(after.current).not.toBe(before.current);
    expect(after).toMatchObject({
      instances: 5,
      outdated: 5,
      revisions: [{ revision: before.current, current: false, instances: 5, outdated: 5 }],
    });
    const outdated = await admin("/admin/pods?outdated=true");
    expect(outdated.items.map((i: { name: string }) => i.name).sort()).toEqual(
      Object.values(instances)
        .map((i) => i.name)
        .sort(),
    );
    expect(outdated.items[0]).toMatchObject({ revision: before.current, outdated: true });
    expect((await admin("/admin/pods?outdated=false")).items).toEqual([]);
  });

  it("replaces at most --max-rollout idle Pods per pass, and never a busy one's", async () => {
    await new Promise((r) => setTimeout(r, IDLE_MS + 100));
    const uids = Object.fromEntries(
      await Promise.all(
        Object.entries(instances).map(async ([id, i]) => [id, (await podOf(i.name)).metadata?.uid]),
      ),
    );
    const owners = Object.fromEntries(
      await Promise.all(
        Object.entries(instances).map(async ([id, i]) => [
          id,
          (await clientPodOf(i.name)).metadata.uid,
        ]),
      ),
    );
    const first = await pass(2);
    expect(first.summary).toMatchObject({ outdated: 2, deleted: 0, failed: 0 });
    const replaced = first.lines.filter((l) => l.reason === "outdated" && l.result === "deleted");
    expect(replaced).toHaveLength(2);
    expect(replaced.map((l) => l.name)).not.toContain(instances.b.name);
    expect(replaced.map((l) => l.name)).not.toContain(instances.e.name);
    const busy = first.lines.find((l) => l.name === instances.b.name);
    if (busy)
      expect(busy).toMatchObject({ reason: "outdated", result: "skipped", sseConnections: 1 });

    const second = await pass(10);
    expect(second.summary).toMatchObject({ outdated: 1, deleted: 0, busy: 1, failed: 0 });
    expect(second.lines.find((l) => l.name === instances.b.name)).toMatchObject({
      reason: "outdated",
      result: "skipped",
      sseConnections: 1,
    });
    // e's gptme-server never answers: a rollout does not replace what cannot say it is idle
    // (asked three times: a refusal may be a fresh reaper pod's network policy lag).
    expect(second.lines.find((l) => l.name === instances.e.name)).toMatchObject({
      reason: "outdated",
      result: "skipped",
      detail: "cannot tell whether it is working",
      unreachable: expect.stringContaining("ECONNREFUSED"),
    });
    // The busy one's Pod is the one it had; the others' are gone (or going), their ClientPods stay.
    expect((await podOf(instances.b.name)).metadata?.uid).toBe(uids.b);
    expect((await podOf(instances.e.name)).metadata?.uid).toBe(uids.e);
    for (const id of ["a", "c", "d"]) {
      await eventually(async () => {
        const pod = await podOf(instances[id].name).catch(() => undefined);
        return !pod || pod.metadata?.uid !== uids[id] || pod.metadata?.deletionTimestamp
          ? true
          : undefined;
      }, `${id}'s old Pod to go`);
      expect((await clientPodOf(instances[id].name)).metadata.uid).toBe(owners[id]);
      await stopServer(id);
    }
  });

  it("starts the new Pod on the next request, with the same token and workspace", async () => {
    const { name } = instances.a;
    const uidBefore = (await clientPodOf(name)).metadata.uid;
    const res = await handler.request("/instances/a?wait=0", { apiKey: KEY });
    const body = await res.json();
    expect(body).toMatchObject({ name, created: true });
    expect(body.endpoint.token).toBe(instances.a.endpoint.token);
    expect(body.workspace.name).toBe(instances.a.workspace.name);
    expect((await clientPodOf(name)).metadata.uid).toBe(uidBefore);
    const pod = await podOf(name);
    expect(pod.spec?.containers[0]?.image).toBe("ghcr.io/gptme/gptme-server:next");
    const rollout = await admin("/admin/rollout");
    expect(pod.metadata?.annotations?.["gptme.ai/revision"]).toBe(rollout.current);
    expect((await clientPodOf(name)).status?.revision).toBe(rollout.current);
    expect(await admin(`/admin/pods/${name}`)).toMatchObject({
      revision: rollout.current,
      outdated: false,
    });
    // Only b and e still run the old revision (c and d have no Pod until their clients return).
    expect(rollout).toMatchObject({ instances: 5, outdated: 2 });

    // The new gptme-server over the same workspace has the conversation made before.
    servers.set("a", await runInstancePod(namespace, await withIp(name)));
    const list = await fetch(`${http.url}${body.endpoint.path}/api/v2/conversations`, {
      headers: { authorization: `Bearer ${body.endpoint.token}` },
    });
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain("before-rollout");
  });
});
