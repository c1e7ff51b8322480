import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  deleteInstance,
  eventually,
  getInstance,
  k,
  NAMESPACE,
  podNameOf,
  readPod,
} from "./support/fleet.js";
import {
  deleteAsClient,
  gateway,
  readVolume,
  readWorkspace,
  reapAsIdle,
} from "./support/workspace.js";

const KEY = "e2e-workspace-key-0001";
const ID = "notes";
const CONVERSATION = "kept-across-reaping";
const MESSAGE = "remember this after lunch";
// gptme-server's conversations under its HOME, which the template mounts the workspace at.
const LOGS = ".local/share/gptme/logs";
const S_ISGID = 0o2000;

// Issue 15 on real containers and a real volume: a conversation made in a real gptme-server
// survives the reaper deleting its idle instance, the next instance's pod mounts the same
// claim, and only a purge ends the data. The claims bind to the real node's StorageClass
// (scripts/real-node-provisioner.sh): `local` volumes the kubelet gives to the pod's fsGroup.
// With the warm pool on (as deployed), the first instance is usually a claimed member: its Pod
// and claim then have the member's name, which the claim keeps for the instance's return.
describe("workspaces on the real node", () => {
  // What each step leaves for the next: one instance's life, reaping and return.
  let first: {
    name: string;
    endpoint: { path: string; token: string };
    podName: string;
    podUid: string;
    workspaceName: string;
  };
  let volumeName: string;
  let directory: string;
  let lastUsedAtReap: string;
  afterAll(async () => {
    if (first) await deleteAsClient(KEY, ID, "?purge=true").catch(() => deleteInstance(first.name));
  });

  it("gives a new instance a claim bound to a local volume on the node, writable by the restricted pod", async () => {
    const started = Date.now();
    const { status, body } = await getInstance(KEY, ID);
    const readyAfterMs = Date.now() - started;
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ status: "ready", created: true });
    const podName = podNameOf(body);
    // Its claim is named as its Pod: the instance's own name, or the claimed member's.
    expect(body.workspace).toEqual({ name: podName, state: "new" });
    const workspaceName = podName;

    const claim = await readWorkspace(workspaceName);
    expect(claim?.spec?.storageClassName).toBe("real-node-local");
    expect(claim?.status?.phase).toBe("Bound");
    // No owner: nothing garbage-collects it with the instance.
    expect(claim?.metadata?.ownerReferences).toBeUndefined();
    volumeName = claim?.spec?.volumeName ?? "";
    const volume = await readVolume(volumeName);
    expect(volume?.spec?.claimRef).toMatchObject({
      name: workspaceName,
      uid: claim?.metadata?.uid,
    });
    directory = volume?.spec?.local?.path ?? "";
    expect(directory).toBe(
      resolve(import.meta.dirname, "../../.cluster/real-node/volumes", volumeName),
    );

    const pod = await readPod(podName);
    expect(pod?.spec?.volumes?.find((v) => v.name === "workspace")?.persistentVolumeClaim).toEqual({
      claimName: workspaceName,
    });
    expect(pod?.spec?.securityContext).toMatchObject({ runAsUser: 1000, fsGroup: 1000 });
    // The directory is root's; the kubelet gave it to the pod's fsGroup on mount (group
    // writable, setgid so what the pod makes stays in the group). The Ready pod's
    // gptme-server, uid 1000 with HOME there, has written its configuration.
    const dir = statSync(directory);
    expect(dir.uid).toBe(0);
    expect(dir.gid).toBe(1000);
    expect(dir.mode & 0o2070).toBe(S_ISGID | 0o070);
    expect(statSync(resolve(directory, ".config/gptme")).uid).toBe(1000);

    first = {
      name: body.name,
      endpoint: body.endpoint,
      podName,
      podUid: pod?.metadata?.uid ?? "",
      workspaceName,
    };
    const kind = podName === body.name ? "started cold" : "a claimed pool member";
    console.error(
      `[e2e] workspaces: a new instance (${kind}) with a new claim Ready in ${readyAfterMs} ms`,
    );
  });

  it("keeps a conversation made through the gateway on the volume", async () => {
    const created = await gateway(first.endpoint, `/api/v2/conversations/${CONVERSATION}`, {
      method: "PUT",
      body: { messages: [] },
    });
    expect(created.status).toBe(200);
    const added = await gateway(first.endpoint, `/api/v2/conversations/${CONVERSATION}`, {
      method: "POST",
      body: { role: "user", content: MESSAGE },
    });
    expect(added.status).toBe(200);
    // On this machine's disk, in the volume's directory, written by the pod's user.
    const file = resolve(directory, LOGS, CONVERSATION, "conversation.jsonl");
    expect(readFileSync(file, "utf8")).toContain(MESSAGE);
    expect(statSync(file).uid).toBe(1000);
  });

  it("is kept when the reaper Job deletes the idle instance", async () => {
    const before = (await readWorkspace(first.workspaceName))?.metadata?.annotations?.[
      "gptme.ai/last-used"
    ];
    const lines = await reapAsIdle(first.name);
    expect(lines.find((l) => l.msg === "reap" && l.name === first.name)).toMatchObject({
      reason: "idle",
      result: "deleted",
    });
    expect(lines.find((l) => l.msg === "summary")).toMatchObject({ failed: 0 });
    expect(k(["get", "clientpod", first.name, "-n", NAMESPACE, "--ignore-not-found"])).toBe("");
    await eventually(
      async () => ((await readPod(first.podName)) ? undefined : true),
      "the reaped instance's pod to be gone",
    );

    const claim = await readWorkspace(first.workspaceName);
    expect(claim?.metadata?.deletionTimestamp).toBeUndefined();
    expect(claim?.spec?.volumeName).toBe(volumeName);
    // The reaper recorded the end of its use: retention counts from here.
    lastUsedAtReap = claim?.metadata?.annotations?.["gptme.ai/last-used"] ?? "";
    expect(Date.parse(lastUsedAtReap)).toBeGreaterThan(Date.parse(before ?? ""));
    expect(existsSync(resolve(directory, LOGS, CONVERSATION, "conversation.jsonl"))).toBe(true);
  });

  it("comes back as a new pod over the same claim, whose new gptme-server lists the old conversation", async () => {
    const started = Date.now();
    const { status, body } = await getInstance(KEY, ID);
    const readyAfterMs = Date.now() - started;
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ name: first.name, status: "ready", created: true });
    expect(body.workspace).toEqual({ name: first.workspaceName, state: "kept" });
    // Never a pool member over a kept workspace: its own Pod, over the claim it had.
    expect(podNameOf(body)).toBe(body.name);

    const pod = await readPod(body.name);
    expect(pod?.metadata?.uid).not.toBe(first.podUid);
    expect(pod?.spec?.volumes?.find((v) => v.name === "workspace")?.persistentVolumeClaim).toEqual({
      claimName: first.workspaceName,
    });
    expect((await readWorkspace(first.workspaceName))?.spec?.volumeName).toBe(volumeName);
    // A new instance has a new token; the old one no longer opens anything.
    expect(body.endpoint.token).not.toBe(first.endpoint.token);

    const listed = await gateway(body.endpoint, "/api/v2/conversations");
    expect(listed.status).toBe(200);
    expect(JSON.stringify(await listed.json())).toContain(CONVERSATION);
    const read = await gateway(body.endpoint, `/api/v2/conversations/${CONVERSATION}`);
    expect(read.status).toBe(200);
    expect(JSON.stringify(await read.json())).toContain(MESSAGE);
    console.error(`[e2e] workspaces: an instance over a kept claim Ready in ${readyAfterMs} ms`);
  });

  it("ends with a purge: the instance, its claim, its volume and the volume's directory go", async () => {
    const { status, body } = await deleteAsClient(KEY, ID, "?purge=true");
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toEqual({ name: first.name, deleted: true, workspace: "purged" });
    // The claim waits for its pod to go (kubernetes.io/pvc-protection), the volume for its
    // claim; then the node's provisioner removes the directory and the volume.
    await eventually(
      async () => ((await readWorkspace(first.workspaceName)) ? undefined : true),
      "the purged claim to be gone",
    );
    await eventually(
      async () => ((await readVolume(volumeName)) ? undefined : true),
      "the purged claim's volume to be gone",
    );
    expect(existsSync(directory)).toBe(false);
    expect(await readPod(first.name)).toBeUndefined();
  });
});
