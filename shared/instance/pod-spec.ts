import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodTemplate,
  V1ResourceRequirements,
} from "@kubernetes/client-node";
import { API_VERSION, type ClientPod, fleetLabels, KIND, LABEL_PLAN } from "./clientpod.js";
import { withWorkspace } from "./pod-workspace.js";

/** The port gptme-server listens on when the template names no container port `http`. */
export const DEFAULT_INSTANCE_PORT = 5700;
export const HTTP_PORT_NAME = "http";

export interface ResourceDefaults {
  defaultCpuLimit: string;
  defaultMemoryLimit: string;
}

/** What one instance's Pod adds to its template. */
export interface InstancePod {
  /** The fleet's annotations (the ClientPod's mirror). */
  annotations: Record<string, string>;
  resources: ResourceDefaults;
  /** Set on the instance's own container, replacing the template's variables of the same names. */
  env?: V1EnvVar[];
  /** The instance's workspace claim; undefined: the template's own `workspace` volume, if any. */
  workspacePvc?: string | undefined;
}

/**
 * The Pod of a ClientPod, built from its PodTemplate. Whatever the template says, the result
 * meets the "restricted" Pod Security Standard, mounts no service account token, gives every
 * container CPU and memory requests and limits, is owned by the ClientPod (so it is deleted
 * with it) and carries the fleet's labels plus `instance.annotations`. The instance's own
 * container is the one serving the `http` port (else the first).
 */
export function buildPod(template: V1PodTemplate, owner: ClientPod, instance: InstancePod): V1Pod {
  const source = structuredClone(template.template ?? {});
  const templateSpec = source.spec ?? { containers: [] };
  const spec = instance.workspacePvc
    ? withWorkspace(templateSpec, instance.workspacePvc, servingIndex(templateSpec.containers))
    : templateSpec;
  const { name, uid } = owner.metadata;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      labels: {
        ...source.metadata?.labels,
        ...fleetLabels(owner.spec.clientId, owner.spec.instanceId),
        ...(owner.spec.plan === undefined ? {} : { [LABEL_PLAN]: owner.spec.plan }),
      },
      annotations: { ...source.metadata?.annotations, ...instance.annotations },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: KIND,
          name,
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...spec,
      automountServiceAccountToken: false,
      hostNetwork: false,
      hostPID: false,
      hostIPC: false,
      securityContext: {
        ...spec.securityContext,
        runAsNonRoot: true,
        // Root is never allowed; drop an explicit uid 0 and let the image's user apply.
        runAsUser:
          spec.securityContext?.runAsUser === 0 ? undefined : spec.securityContext?.runAsUser,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: withInstanceEnv(spec.containers, instance.env ?? []).map((c) =>
        restrictContainer(c, instance.resources),
      ),
      initContainers: spec.initContainers?.map((c) => restrictContainer(c, instance.resources)),
    },
  };
}

function restrictContainer(container: V1Container, defaults: ResourceDefaults): V1Container {
  const sc = container.securityContext ?? {};
  // The restricted standard allows adding back only NET_BIND_SERVICE.
  const added = sc.capabilities?.add?.filter((cap) => cap === "NET_BIND_SERVICE");
  const seccomp =
    sc.seccompProfile?.type === "Localhost" ? sc.seccompProfile : { type: "RuntimeDefault" };
  return {
    ...container,
    // Host ports would bind the node's network namespace.
    ports: container.ports?.map(({ hostPort: _hostPort, hostIP: _hostIP, ...port }) => port),
    securityContext: {
      ...sc,
      privileged: false,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      runAsUser: sc.runAsUser === 0 ? undefined : sc.runAsUser,
      capabilities: { drop: ["ALL"], ...(added?.length ? { add: added } : {}) },
      seccompProfile: seccomp,
    },
    resources: withResources(container.resources, defaults),
  };
}

/** The instance's own container: the one serving the `http` port, else the first. */
export function servingIndex(containers: readonly V1Container[]): number {
  const serving = containers.findIndex((c) => c.ports?.some((p) => p.name === HTTP_PORT_NAME));
  return serving === -1 ? 0 : serving;
}

function withInstanceEnv(containers: V1Container[], env: V1EnvVar[]): V1Container[] {
  if (env.length === 0) return containers;
  const target = servingIndex(containers);
  const names = new Set(env.map((e) => e.name));
  return containers.map((c, index) =>
    index === target
      ? { ...c, env: [...(c.env ?? []).filter((e) => !names.has(e.name)), ...env] }
      : c,
  );
}

/** Limits from the template, else the defaults; requests from the template, else the limits. */
function withResources(
  resources: V1ResourceRequirements | undefined,
  defaults: ResourceDefaults,
): V1ResourceRequirements {
  const limits = {
    ...resources?.limits,
    cpu: resources?.limits?.cpu ?? defaults.defaultCpuLimit,
    memory: resources?.limits?.memory ?? defaults.defaultMemoryLimit,
  };
  const requests = {
    ...resources?.requests,
    cpu: resources?.requests?.cpu ?? limits.cpu,
    memory: resources?.requests?.memory ?? limits.memory,
  };
  return { ...resources, limits, requests };
}

/** The port of the container port named `http`, else gptme-server's default. */
export function instancePortOf(pod: V1Pod): number {
  for (const container of pod.spec?.containers ?? []) {
    const port = container.ports?.find((p) => p.name === HTTP_PORT_NAME);
    if (port) return port.containerPort;
  }
  return DEFAULT_INSTANCE_PORT;
}
