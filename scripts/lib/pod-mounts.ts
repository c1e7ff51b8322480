import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoreV1Api, V1Container, V1Pod } from "@kubernetes/client-node";

/**
 * Does for a KWOK pod's instance container what a kubelet's volume mounts would: each
 * mounted volume becomes a directory on this machine (a claim's bound hostPath volume, the
 * very directory the cluster's provisioner made for it; a fresh directory for an emptyDir),
 * and the container's environment is returned with each mount path turned into its
 * directory, so a gptme-server run with it (HOME=/home/gptme, XDG_DATA_HOME=/workspace/...)
 * writes where the pod's would. Used by the tests and by npm run dev.
 */
export async function localEnvOf(
  core: CoreV1Api,
  pod: V1Pod,
  container: V1Container,
): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? "default";
  const dirs: [mountPath: string, dir: string][] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
    const workspaceName = volume?.persistentVolumeClaim?.claimName;
    let dir: string | undefined;
    if (workspaceName) dir = await workspaceDir(core, namespace, workspaceName);
    else if (volume?.emptyDir) dir = mkdtempSync(join(tmpdir(), "pod-emptydir-"));
    if (dir) dirs.push([mount.mountPath, mount.subPath ? join(dir, mount.subPath) : dir]);
  }
  // Longest mount path first: /home/gptme/x is inside /home/gptme/x, not just /home/gptme.
  dirs.sort(([a], [b]) => b.length - a.length);
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value === undefined) continue;
    const value = variable.value;
    const match = dirs.find(([path]) => value === path || value.startsWith(`${path}/`));
    env[variable.name] = match ? match[1] + value.slice(match[0].length) : value;
  }
  return env;
}

/**
 * The directory behind a claim: its PersistentVolume's hostPath (or local) path, once the
 * volume controller has bound it (moments after the claim is made, as a kubelet waits).
 */
export async function workspaceDir(
  core: CoreV1Api,
  namespace: string,
  name: string,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let volumeName: string | undefined;
  for (;;) {
    const claim = await core.readNamespacedPersistentVolumeClaim({ name, namespace });
    volumeName = claim.spec?.volumeName;
    if (volumeName || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!volumeName) throw new Error(`claim ${namespace}/${name} is not bound to a volume`);
  const volume = await core.readPersistentVolume({ name: volumeName });
  const path = volume.spec?.hostPath?.path ?? volume.spec?.local?.path;
  if (!path) throw new Error(`volume ${volumeName} has no directory on this machine`);
  return path;
}
