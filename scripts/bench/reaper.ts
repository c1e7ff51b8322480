import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import pLimit from "p-limit";
import { clientPodManifest } from "../../shared/instance/clientpod.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { adminKube, createNamespace, deleteNamespace, KUBECONFIG, ROOT, say } from "./lib.js";

export interface ReaperRun {
  instances: number;
  expired: number;
  seconds: number;
  peakRssMb: number;
  summary: {
    checked: number;
    deleted: number;
    skipped: number;
    failed: number;
    durationMs: number;
  };
  setupSeconds: number;
}

/**
 * `instances` ClientPods (no Pods: the reaper's cost is reading and deleting ClientPods),
 * half of them idle for two hours; then one real pass of the built reaper, run as its bin
 * (with its V8 flags) and measured by /usr/bin/time.
 */
export async function reaperAtScale(instances: number): Promise<ReaperRun> {
  const namespace = await createNamespace("bench-reaper");
  const kube = adminKube(namespace);
  const setupStarted = performance.now();
  try {
    say(`reaper: creating ${instances} ClientPods in ${namespace}, half idle for 2 h`);
    const limit = pLimit(32);
    const idleSince = new Date(Date.now() - 2 * 3600_000).toISOString();
    let done = 0;
    await Promise.all(
      Array.from({ length: instances }, (_, i) =>
        limit(async () => {
          const clientId = clientIdOf(`bench-key-${i % 1000}`);
          const name = instanceNameOf(clientId, `i${i}`);
          await kube.clientPods.create(
            clientPodManifest({ name, clientId, instanceId: `i${i}`, podTemplate: "gptme-client" }),
          );
          // Half idle (last touched 2 h ago), half fresh (touched now).
          await kube.clientPods.patchStatus(name, {
            lastActivity: i % 2 === 0 ? idleSince : new Date().toISOString(),
          });
          if (++done % 2000 === 0) say(`reaper:   ${done}/${instances}`);
        }),
      ),
    );
    const setupSeconds = (performance.now() - setupStarted) / 1000;

    say(`reaper: one pass over ${instances}`);
    const pass = await timedReaperPass(namespace, []);
    return { instances, expired: instances / 2, ...pass, setupSeconds };
  } finally {
    kube.close();
    say(`reaper: deleting ${namespace}`);
    await deleteNamespace(namespace);
  }
}

export interface TimedPass {
  seconds: number;
  peakRssMb: number;
  summary: ReaperRun["summary"];
}

/**
 * One pass of the built reaper, run as its bin (with its V8 flags), measured by GNU time.
 * Asynchronously: whatever this process serves (the probe's stand-in) keeps answering.
 */
export async function timedReaperPass(namespace: string, args: string[]): Promise<TimedPass> {
  const out = join(mkdtempSync(join(tmpdir(), "bench-reaper-")), "out");
  // GNU time: wall seconds and peak resident set size (KiB) of the whole process.
  await promisify(execFile)(
    "bash",
    [
      "-c",
      `/usr/bin/time -o "${out}.time" -f '%e %M' "${resolve(ROOT, "dist/reaper/main.js")}" ${args.join(" ")} > "${out}"`,
    ],
    {
      env: { ...process.env, KUBECONFIG, NAMESPACE: namespace },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const [seconds, maxRssKb] = readFileSync(`${out}.time`, "utf8").trim().split(" ").map(Number);
  const lines = readFileSync(out, "utf8").trim().split("\n");
  return {
    seconds: seconds ?? Number.NaN,
    peakRssMb: (maxRssKb ?? Number.NaN) / 1024,
    summary: JSON.parse(lines.at(-1) ?? "{}"),
  };
}
