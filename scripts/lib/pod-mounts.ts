import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoreV1Api, V1Container, V1EnvVarSource, V1Pod } from "@kubernetes/client-node";

/**
 * Does for a KWOK pod's instance container what a kubelet's volume mounts would: each
 * mounted volume becomes a directory on this machine (a claim's bound hostPath volume, the
 * very directory the cluster's provisioner made for it; a fresh directory for an emptyDir),
 * and the container's environment is returned with each mount path turned into its
 * directory, so a gptme-server run with it (HOME=/home/gptme, XDG_DATA_HOME=/workspace/...)
 * writes where the pod's would. Variables from a Secret or ConfigMap key are read from it, as
 * a kubelet reads them (a plan's model settings and provider key); an optional one that is
 * missing is left out. Used by the tests and by npm run dev.
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
    if (variable.valueFrom) {
      const value = await referencedValue(core, namespace, variable.valueFrom);
      if (value !== undefined) env[variable.name] = value;
      continue;
    }
    if (variable.value === undefined) continue;
    const value = variable.value;
    const match = dirs.find(([path]) => value === path || value.startsWith(`${path}/`));
    env[variable.name] = match ? match[1] + value.slice(match[0].length) : value;
  }
  return env;
}

/** A variable's value from a Secret's or ConfigMap's key; undefined when optional and missing. */
async function referencedValue(
  core: CoreV1Api,
  namespace: string,
  source: V1EnvVarSource,
): Promise<string | undefined> {
  const ref = source.secretKeyRef ?? source.configMapKeyRef;
  if (!ref?.name) return undefined;
  const read = source.secretKeyRef
    ? core
        .readNamespacedSecret({ name: ref.name, namespace })
        .then((s) => s.data?.[ref.key] && Buffer.from(s.data[ref.key] ?? "", "base64").toString())
    : core.readNamespacedConfigMap({ name: ref.name, namespace }).then((c) => c.data?.[ref.key]);
  const value = await read.catch((error: { code?: number }) => {
    if (error.code === 404 && ref.optional) return undefined;
    throw error;
  });
  if (value === undefined && !ref.optional) {
    throw new Error(`${ref.name} has no key ${ref.key} (the kubelet would not start the pod)`);
  }
  return value;
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
