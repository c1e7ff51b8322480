// npm run dev's stand-in for a kubelet: KWOK pods run no containers, so for every instance
// Pod in the namespace this runs the real gptme-server at the pod's loopback IP and `http`
// port, with GPTME_SERVER_TOKEN from the Secret the Pod references and its volumes mounted
// as a kubelet would (its workspace claim's directory as HOME), and stops it when the Pod
// goes. The gateway then reaches a live gptme-server, and a returning user finds their
// conversations, as in a real cluster.
//
// Usage: node .bench/scripts/dev-pods.js NAMESPACE GPTME_SERVER_BIN   (KUBECONFIG set)
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { localEnvOf } from "./lib/pod-mounts.js";

const [namespaceArg, gptmeServerArg] = process.argv.slice(2);
if (!namespaceArg || !gptmeServerArg)
  throw new Error("usage: dev-pods.js NAMESPACE GPTME_SERVER_BIN");
const namespace: string = namespaceArg;
const gptmeServer: string = gptmeServerArg;
const POLL_MS = 2_000;

const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
/** Running servers by pod uid. */
const running = new Map<string, ChildProcess>();

const say = (text: string) => process.stderr.write(`[dev-pods] ${text}\n`);

async function start(pod: V1Pod & { metadata: { uid: string; name: string } }) {
  const ip = pod.status?.podIP;
  // Only loopback pod IPs (the local cluster's): never an address this machine does not own.
  if (!ip || !/^127\.\d+\.\d+\.\d+$/.test(ip)) return;
  const container = pod.spec?.containers.find((c) => c.ports?.some((p) => p.name === "http"));
  if (!container) return;
  const port = container.ports?.find((p) => p.name === "http")?.containerPort ?? 5700;
  const ref = container.env?.find((e) => e.name === "GPTME_SERVER_TOKEN")?.valueFrom?.secretKeyRef;
  if (!ref?.name || !ref.key) return;
  const secret = await core.readNamespacedSecret({ name: ref.name, namespace });
  const token = Buffer.from(secret.data?.[ref.key] ?? "", "base64").toString("utf8");
  const proc = spawn(gptmeServer, ["serve", "--host", ip, "--port", String(port)], {
    env: {
      PATH: process.env.PATH,
      HOME: mkdtempSync(join(tmpdir(), "dev-gptme-")),
      ...(await localEnvOf(core, pod, container)),
      GPTME_SERVER_TOKEN: token,
    },
    stdio: "ignore",
  });
  running.set(pod.metadata.uid, proc);
  say(`gptme-server for ${pod.metadata.name} at http://${ip}:${port}`);
}

async function sync() {
  const pods = await core.listNamespacedPod({
    namespace,
    labelSelector: "app.kubernetes.io/managed-by=gptme-fleet",
  });
  const live = new Map(
    pods.items
      .filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.uid && p.metadata.name)
      .map((p) => [p.metadata?.uid as string, p as Parameters<typeof start>[0]]),
  );
  for (const [uid, proc] of running) {
    if (!live.has(uid)) {
      proc.kill("SIGTERM");
      running.delete(uid);
    }
  }
  for (const [uid, pod] of live) {
    if (!running.has(uid))
      await start(pod).catch((error) => say(`${pod.metadata.name}: ${error.message}`));
  }
}

const stop = () => {
  for (const proc of running.values()) proc.kill("SIGTERM");
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
for (;;) {
  await sync().catch((error) => say(`cannot list pods: ${error.message}`));
  await new Promise((r) => setTimeout(r, POLL_MS));
}
