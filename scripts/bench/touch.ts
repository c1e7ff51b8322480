import { readFileSync } from "node:fs";
import { loadHandlerConfig } from "../../shared/config/load.js";
import {
  instanceTokenOf,
  newTokenKey,
  parseTokenKeys,
} from "../../shared/tokens/instance-token.js";
import { heapProbe } from "./heap.js";
import {
  adminKube,
  adminKubeConfig,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { fleetBuilder, instanceAt } from "./scale-fleet.js";
import { BenchNodes, startUpstream } from "./scale-nodes.js";
import { closedLoop } from "./stats.js";

// What the handler's memory holds before and after the gateway touches TOUCH_SIZE distinct
// instances, a cheaper reproduction of the scale benchmark's last step (the real handler, the
// real control plane, the scale benchmark's fleet): RSS, then after a garbage collection the
// heap used and the buffers, at once and after TOUCH_SETTLE_MS quiet; TOUCH_SNAPSHOT=<path>
// writes a heap snapshot right after the touching. After a build and
// `npx tsc -p tsconfig.scripts.json`: `node .bench/scripts/bench/touch.js`.
const size = Number(process.env.TOUCH_SIZE ?? 10_000);
const settleMs = Number(process.env.TOUCH_SETTLE_MS ?? 65_000);
const out = process.env.TOUCH_OUT ?? "/tmp/touch";

const namespace = await createNamespace("bench-touch");
await installTemplate(namespace);
const kc = adminKubeConfig();
const kube = adminKube(namespace);
const keyText = newTokenKey();
const key = parseTokenKeys(keyText).current;
const env = {
  INSTANCE_TOKEN_SECRET: keyText,
  MAX_INSTANCES: "1000000",
  MAX_INSTANCES_PER_CLIENT: "50",
  ADMIN_TOKEN: "bench-touch-admin-token-0123456789",
};
const config = loadHandlerConfig({
  env: { NAMESPACE: namespace, CLIENT_AUTH: "open", ...env },
  readFile: (path) => readFileSync(path, "utf8"),
});
const template = await kube.podTemplates.get(config.plans.current().default.template);
if (!template) throw new Error("no PodTemplate");
const nodes = new BenchNodes(kc, namespace);
const upstream = await startUpstream();
const builder = fleetBuilder(kube, kc, namespace, template, config, key, nodes);
try {
  const grown = await builder.build(0, size);
  say(`touch: ${grown.size} instances in ${grown.seconds.toFixed(0)} s`);
  // One handler per set of Node flags (TOUCH_NODE_ARGS: sets separated by "|"; the first,
  // empty by default, as the bench runs it), each fresh, on the same fleet. A `NAME=value` in
  // a set is given to that handler's environment instead (MALLOC_ARENA_MAX=2, say).
  const variants = (process.env.TOUCH_NODE_ARGS ?? "")
    .split("|")
    .map((v) => v.split(" ").filter(Boolean));
  for (const [n, extra] of variants.entries()) {
    const heap = heapProbe(`${out}-probe.json`);
    const isEnv = (word: string) => /^[A-Z_][A-Z0-9_]*=/.test(word);
    const extraEnv = Object.fromEntries(
      extra
        .filter(isEnv)
        .map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]),
    );
    const handler = await startHandler(namespace, { ...env, ...heap.env, ...extraEnv }, [
      ...heap.nodeArgs,
      ...extra.filter((word) => !isEnv(word)),
    ]);
    const probe = async (label: string, snapshot?: string) => {
      const figures = await heap.read(handler.pid, snapshot);
      const rounded = JSON.stringify(figures, (_k, v) =>
        typeof v === "number" ? Math.round(v * 10) / 10 : v,
      );
      say(`touch [${extra.join(" ")}]: ${label}: ${rounded}`);
    };
    const gatewayTo = async (index: number) => {
      const { name } = instanceAt(index);
      const token = instanceTokenOf(key, builder.uidOf(index));
      const r = await httpGet(`${handler.url}/api/v1/instances/${name}/ping`, {
        authorization: `Bearer ${token}`,
      });
      return r.status === 200;
    };
    try {
      for (let i = 0; i < 200; i++) await gatewayTo(i % 20);
      await sleep(2_000);
      await probe("before");
      let failed = 0;
      const run = await closedLoop(size, 16, async (i) => {
        if (!(await gatewayTo(i))) failed++;
      });
      say(`touch: ${size} touched in ${run.seconds.toFixed(0)} s, ${failed} failed`);
      const snapshot = process.env.TOUCH_SNAPSHOT;
      await probe("after", snapshot && `${snapshot}-${n}.heapsnapshot`);
      await sleep(settleMs);
      await probe(`after ${settleMs / 1000} s quiet`);
    } finally {
      await handler.stop();
    }
  }
} finally {
  upstream.server.close();
  kube.close();
  const { CoreV1Api } = await import("@kubernetes/client-node");
  await kc
    .makeApiClient(CoreV1Api)
    .deleteCollectionNamespacedPod({ namespace, body: { gracePeriodSeconds: 0 } })
    .catch(() => undefined);
  await nodes.remove();
  await deleteNamespace(namespace);
}
// Only once everything above succeeded: a failure has been thrown by now, and is printed.
process.exit(0);

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
