import type { V1Container, V1PodSpec, V1Volume } from "@kubernetes/client-node";
import { DEFAULT_WORKSPACE_MOUNT, WORKSPACE_VOLUME } from "./workspace.js";

/**
 * The Pod spec with its workspace on the instance's claim. A template names where the
 * workspace goes by declaring a volume called `workspace` (ours: an emptyDir mounted as
 * gptme-server's HOME, which is also what runs with WORKSPACES=off); that volume's source
 * becomes the claim, and the template's mounts stay as they are. A template without one
 * gets it mounted at /workspace on the instance's container (`serving`), as its HOME, with
 * gptme-server's data and configuration directories pointed there, so its conversations land
 * on the claim either way. HOME too: gptme keeps a person's own provider keys and default
 * model in ~/.config/gptme/ whatever XDG_CONFIG_HOME says (gptme 0.35.1, config/user.py).
 */
export function withWorkspace(spec: V1PodSpec, workspaceName: string, serving: number): V1PodSpec {
  const volume: V1Volume = {
    name: WORKSPACE_VOLUME,
    persistentVolumeClaim: { claimName: workspaceName },
  };
  const volumes = spec.volumes ?? [];
  if (volumes.some((v) => v.name === WORKSPACE_VOLUME)) {
    return { ...spec, volumes: volumes.map((v) => (v.name === WORKSPACE_VOLUME ? volume : v)) };
  }
  return {
    ...spec,
    volumes: [...volumes, volume],
    containers: spec.containers.map((c, index) => (index === serving ? mounted(c) : c)),
  };
}

const WORKSPACE_ENV = [
  { name: "HOME", value: DEFAULT_WORKSPACE_MOUNT },
  { name: "XDG_DATA_HOME", value: `${DEFAULT_WORKSPACE_MOUNT}/.local/share` },
  { name: "XDG_CONFIG_HOME", value: `${DEFAULT_WORKSPACE_MOUNT}/.config` },
];

function mounted(container: V1Container): V1Container {
  const names = new Set(WORKSPACE_ENV.map((e) => e.name));
  return {
    ...container,
    volumeMounts: [
      ...(container.volumeMounts ?? []),
      { name: WORKSPACE_VOLUME, mountPath: DEFAULT_WORKSPACE_MOUNT },
    ],
    env: [...(container.env ?? []).filter((e) => !names.has(e.name)), ...WORKSPACE_ENV],
  };
}
