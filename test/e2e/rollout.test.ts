import { execFileSync } from "node:child_process";
import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { EventStream } from "../support/gptme.js";
import {
  deleteInstance,
  eventually,
  getInstance,
  k,
  NAMESPACE,
  podNameOf,
  readPod,
  runReaperJob,
} from "./support/fleet.js";
import { gateway } from "./support/workspace.js";

const ROOT = resolve(import.meta.dirname, "../..");
const KEY = "e2e-rollout-key-00001";

/** The node's containerd, where the images are (scripts/real-node.sh). */
function ctr(args: string[]): string {
  const sock = resolve(
    realpathSync(resolve(ROOT, ".cluster")),
    "real-node/containerd/containerd.sock",
  );
  return execFileSync("ctr", ["--address", sock, "--namespace", "k8s.io", ...args], {
    encoding: "utf8",
  });
}

const templateImage = () =>
  k([
    "get",
    "podtemplate",
    "gptme-client",
    "-n",
    NAMESPACE,
    "-o",
    "jsonpath={.template.spec.containers[0].image}",
  ]);
const setTemplateImage = (image: string) =>
  k([
    "patch",
    "podtemplate",
    "gptme-client",
    "-n",
    NAMESPACE,
    "--type=json",
    "-p",
    JSON.stringify([{ op: "replace", path: "/template/spec/containers/0/image", value: image }]),
  ]);
const setRolloutIdle = (value: string) =>
  k([
    "patch",
    "configmap",
    "fleet-config",
    "-n",
    NAMESPACE,
    "--type=merge",
    "-p",
    JSON.stringify({ data: { ROLLOUT_IDLE: value } }),
  ]);

// A second tag of the gptme-server image rolls through the fleet on the real node: an
// instance under an open web session (an event stream through the gateway) is left alone;
// once the session closes the reaper replaces its Pod, and the next gateway request gets a
// gptme-server of the new image over the same workspace, with the same token.
describe("a rollout of the gptme-server image on the real node", () => {
  let name = "";
  let original = "";
  const jobs: string[] = [];
  const abort = new AbortController();

  afterAll(async () => {
    abort.abort();
    if (original) setTemplateImage(original);
    setRolloutIdle("10m");
    for (const job of jobs)
      k(["delete", "job", job, "-n", NAMESPACE, "--wait=false", "--ignore-not-found"]);
    if (name) await deleteInstance(name);
  }, 400_000);

  it("leaves a busy instance alone, then replaces its Pod once idle; the next request runs the new image", async () => {
    const { status, body } = await getInstance(KEY, "roll", 60);
    expect(status, JSON.stringify(body)).toBe(200);
    name = body.name;
    // Its Pod: the instance's name, or a claimed pool member's (the warm pool is on).
    const podName = podNameOf(body);
    const endpoint = body.endpoint as { path: string; token: string };
    const put = await gateway(endpoint, "/api/v2/conversations/before-rollout", {
      method: "PUT",
      body: { messages: [{ role: "user", content: "remember me" }] },
    });
    expect(put.status).toBe(200);
    const { session_id } = (await put.json()) as { session_id: string };
    // The web UI's open session: an event stream through the gateway.
    const events = new EventStream(
      await fetch(
        `${inject("traefikUrl")}${endpoint.path}/api/v2/conversations/before-rollout/events?session_id=${session_id}`,
        { headers: { authorization: `Bearer ${endpoint.token}` }, signal: abort.signal },
      ),
    );
    await events.next((e) => e.type === "connected", 10_000);
    const oldPod = await readPod(podName);

    original = templateImage();
    const next = original.replace(/:[^:/]+$/, ":rollout-next");
    ctr(["images", "tag", "--force", original, next]);
    setTemplateImage(next);
    setRolloutIdle("1s");
    await new Promise((r) => setTimeout(r, 2_000));

    const busy = runReaperJob("reap-rollout");
    jobs.push(busy.job);
    const decided = busy.lines.find((l) => l.name === podName);
    expect(decided, JSON.stringify(decided)).toMatchObject({
      reason: "outdated",
      result: "skipped",
      sseConnections: 1,
    });
    expect((await readPod(podName))?.metadata?.uid).toBe(oldPod?.metadata?.uid);

    // The session closes; a later pass (the CronJob's next) replaces the Pod once its
    // gptme-server says it is idle.
    abort.abort();
    let replaced: Record<string, unknown> | undefined;
    const seen: unknown[] = [];
    for (let attempt = 0; attempt < 4 && !replaced; attempt++) {
      await new Promise((r) => setTimeout(r, 2_000));
      const pass = runReaperJob("reap-rollout");
      jobs.push(pass.job);
      const line = pass.lines.find((l) => l.name === podName);
      seen.push(line);
      if (line?.result === "deleted") {
        replaced = line;
        expect(pass.lines.find((l) => l.msg === "summary")).toMatchObject({ outdated: 1 });
      }
    }
    expect(replaced, JSON.stringify(seen)).toMatchObject({
      kind: "pod",
      reason: "outdated",
      result: "deleted",
      generating: 0,
      sseConnections: 0,
    });
    await eventually(
      async () =>
        (await readPod(podName))?.metadata?.uid === oldPod?.metadata?.uid ? undefined : true,
      "the old Pod to go",
      90_000,
    );

    const list = await gateway(endpoint, "/api/v2/conversations");
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain("before-rollout");
    const newPod = await readPod(podName);
    expect(newPod?.spec?.containers[0]?.image).toBe(next);
    expect(newPod?.metadata?.uid).not.toBe(oldPod?.metadata?.uid);
  });
});
