import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import { k, NAMESPACE, rollHandlers, runReaperJob } from "./fleet.js";
import { endpointManifests } from "./model-endpoint.js";

// Plans on the real node: the deployed handler and reaper with PLANS_FILE (a plan `model` whose
// template gives gptme-server a model, beside the default), API keys naming plans, and the
// model endpoint in the cluster: the OpenAI-compatible stand-in (scripts/lib/model-endpoint.ts)
// in a Pod of the handler's image, behind a Service, with the NetworkPolicies of
// k8s/local/models/. Everything is put back as it was by `restore`.

const ROOT = resolve(import.meta.dirname, "../../..");
export const MODEL_KEY = "e2e-plans-model-key-0001";
export const DEFAULT_KEY = "e2e-plans-default-key-01";
const MOUNT = "/etc/fleet/plans";

const digest = (key: string) => createHash("sha256").update(key).digest("hex");

export interface ModelPlan {
  /** The endpoint Pod's IP and port (what the NetworkPolicy opens). */
  endpoint: { ip: string; port: number };
  /** The provider key in the Secret (the test checks that no fleet object holds it). */
  providerKey: string;
  restore(): void;
}

/** `kubectl create <args>` made idempotent: rendered, then applied (leftovers are replaced). */
function applied(args: string[]): void {
  k(["apply", "-f", "-"], k(["create", ...args, "--dry-run=client", "-o", "json"]));
}

/** A saved object, stripped of what the API server owns, to put back with `kubectl replace`. */
function saved(kind: string, name: string): string {
  const object = JSON.parse(k(["get", kind, name, "-n", NAMESPACE, "-o", "json"]));
  delete object.metadata.resourceVersion;
  delete object.metadata.uid;
  delete object.metadata.creationTimestamp;
  delete object.metadata.generation;
  delete object.metadata.managedFields;
  delete object.status;
  return JSON.stringify(object);
}

/**
 * The JSON patch that mounts the plans' ConfigMap into the pod spec at `path` of `object` (a
 * saved Deployment or CronJob) and sets `env`, appending to what the spec has.
 */
function mountPatch(object: string, path: string, env: Record<string, string>): string {
  // biome-ignore lint/suspicious/noExplicitAny: the saved object, walked by its JSON pointer
  let spec: any = JSON.parse(object);
  for (const part of path.split("/").filter(Boolean)) spec = spec?.[part];
  const volume = { name: "plans", configMap: { name: "fleet-plans" } };
  const mount = { name: "plans", mountPath: MOUNT, readOnly: true };
  return JSON.stringify([
    spec?.volumes
      ? { op: "add", path: `${path}/volumes/-`, value: volume }
      : { op: "add", path: `${path}/volumes`, value: [volume] },
    spec?.containers?.[0]?.volumeMounts
      ? { op: "add", path: `${path}/containers/0/volumeMounts/-`, value: mount }
      : { op: "add", path: `${path}/containers/0/volumeMounts`, value: [mount] },
    ...Object.entries(env).map(([name, value]) => ({
      op: "add",
      path: `${path}/containers/0/env/-`,
      value: { name, value },
    })),
  ]);
}

/**
 * Deploys plans: `default` (gptme-client, `defaultPool` members) and `model`
 * (gptme-client-model, `modelPool` members), API keys (by digest) naming them, the model
 * endpoint, and fills both pools with one reaper pass.
 */
export async function deployModelPlan({ defaultPool = 1, modelPool = 1 } = {}): Promise<ModelPlan> {
  const handler = saved("deployment", "fleet-handler");
  const reaper = saved("cronjob", "fleet-reaper");
  const restore = () => {
    // Until the plan's handlers (CLIENT_AUTH=keys, its keys) are gone: one of them refused the
    // next test file's first request (403 unknown_api_key) while it drained.
    rollHandlers(() => k(["replace", "-f", "-"], handler));
    k(["replace", "-f", "-"], reaper);
    for (const [kind, name] of [
      ["deployment", "fleet-model-endpoint"],
      ["service", "fleet-model-endpoint"],
      ["configmap", "fleet-model-endpoint-code"],
      ["configmap", "fleet-model"],
      ["configmap", "fleet-plans"],
      ["secret", "fleet-model-credentials"],
      ["podtemplate", "gptme-client-model"],
      ["networkpolicy", "client-pods-model-egress"],
      ["networkpolicy", "fleet-model-endpoint-ingress"],
    ] as const) {
      k(["delete", kind, name, "-n", NAMESPACE, "--ignore-not-found"]);
    }
    // The model plan's members and instances: their plan is gone with its template.
    k(["delete", "clientpods", "-n", NAMESPACE, "-l", "gptme.ai/plan=model", "--wait=true"]);
  };
  try {
    return await deploy(handler, reaper, restore, { defaultPool, modelPool });
  } catch (error) {
    restore();
    throw error;
  }
}

async function deploy(
  handler: string,
  reaper: string,
  restore: () => void,
  { defaultPool, modelPool }: { defaultPool: number; modelPool: number },
): Promise<ModelPlan> {
  const providerKey = `sk-e2e-${randomBytes(12).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "e2e-plans-"));

  // The stand-in's code, as built for npm run dev, run by the handler image's Node.
  execFileSync("npx", ["tsc", "-p", "tsconfig.scripts.json"], { cwd: ROOT, stdio: "ignore" });
  const built = resolve(ROOT, ".bench/scripts");
  applied([
    "configmap",
    "fleet-model-endpoint-code",
    "-n",
    NAMESPACE,
    `--from-file=cli.js=${join(built, "model-endpoint.js")}`,
    `--from-file=lib.js=${join(built, "lib/model-endpoint.js")}`,
    `--from-literal=package.json={"type":"module"}`,
  ]);
  writeFileSync(join(dir, "apiKey"), providerKey);
  applied([
    "secret",
    "generic",
    "fleet-model-credentials",
    "-n",
    NAMESPACE,
    `--from-file=apiKey=${join(dir, "apiKey")}`,
  ]);
  k(["apply", "-f", "-"], endpointManifests());
  k(["rollout", "status", "deployment/fleet-model-endpoint", "-n", NAMESPACE, "--timeout=180s"]);
  const clusterIp = k([
    "get",
    "service",
    "fleet-model-endpoint",
    "-n",
    NAMESPACE,
    "-o",
    "jsonpath={.spec.clusterIP}",
  ]);
  applied([
    "configmap",
    "fleet-model",
    "-n",
    NAMESPACE,
    `--from-literal=baseUrl=http://${clusterIp}/v1`,
  ]);
  // The model plan's template, placed and imaged as the overlay places gptme-client.
  const template = loadYaml<Record<string, never>>(
    readFileSync(resolve(ROOT, "k8s/local/models/podtemplate-gptme-client-model.yaml"), "utf8"),
  ) as unknown as {
    template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
  };
  const spec = template.template.spec;
  spec.nodeSelector = { "gptme.ai/real-node": "true" };
  spec.tolerations = [
    { key: "gptme.ai/real-node", operator: "Equal", value: "true", effect: "NoSchedule" },
  ];
  const container = spec.containers[0] as Record<string, unknown>;
  container.image = "localhost/gptme-fleet/gptme-server:local";
  container.imagePullPolicy = "Never";
  k(["apply", "-f", "-"], JSON.stringify(template));
  k(["apply", "-f", resolve(ROOT, "k8s/local/models/networkpolicy-model.yaml")]);

  const plans = [
    "default: default",
    "plans:",
    `  default: {template: gptme-client, poolSize: ${defaultPool}}`,
    `  model: {template: gptme-client-model, poolSize: ${modelPool}}`,
  ].join("\n");
  const keys = `sha256:${digest(DEFAULT_KEY)}\nsha256:${digest(MODEL_KEY)} model\n`;
  writeFileSync(join(dir, "plans.yaml"), `${plans}\n`);
  writeFileSync(join(dir, "api-keys"), keys);
  applied([
    "configmap",
    "fleet-plans",
    "-n",
    NAMESPACE,
    `--from-file=plans.yaml=${join(dir, "plans.yaml")}`,
    `--from-file=api-keys=${join(dir, "api-keys")}`,
  ]);
  const env = {
    PLANS_FILE: `${MOUNT}/plans.yaml`,
    API_KEYS_FILE: `${MOUNT}/api-keys`,
    CLIENT_AUTH: "keys",
  };
  rollHandlers(() =>
    k([
      "patch",
      "deployment",
      "fleet-handler",
      "-n",
      NAMESPACE,
      "--type=json",
      "-p",
      mountPatch(handler, "/spec/template/spec", env),
    ]),
  );
  k([
    "patch",
    "cronjob",
    "fleet-reaper",
    "-n",
    NAMESPACE,
    "--type=json",
    "-p",
    mountPatch(reaper, "/spec/jobTemplate/spec/template/spec", {
      PLANS_FILE: `${MOUNT}/plans.yaml`,
    }),
  ]);
  const { job, lines } = runReaperJob("e2e-plans-fill");
  k(["delete", "job", job, "-n", NAMESPACE]);
  // What the pass did for each plan's pool: why a pool is not full when a test waits for it.
  for (const line of lines.filter((l) => String(l.msg).startsWith("pool"))) {
    const { time: _time, level: _level, service: _service, ...fields } = line;
    console.error(`[e2e] plans fill pass: ${JSON.stringify(fields)}`);
  }

  const endpointPod = JSON.parse(
    k([
      "get",
      "pods",
      "-n",
      NAMESPACE,
      "-l",
      "app.kubernetes.io/name=fleet-model-endpoint",
      "-o",
      "json",
    ]),
  ).items[0];
  return {
    endpoint: { ip: endpointPod?.status?.podIP ?? "", port: 8080 },
    providerKey,
    restore,
  };
}
