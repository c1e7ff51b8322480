import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import {
  adminKube,
  answerHealth,
  apiCalls,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  say,
  startHandler,
} from "./lib.js";
import { type Stats, stats } from "./stats.js";

export interface WorkspaceColdResult {
  mode: "off" | "on, new workspace" | "on, kept workspace";
  stats: Stats;
  callsPerRequest: number;
}

/**
 * Cold start with workspaces off and on, one request at a time (`?wait=30`, the production
 * PodTemplate): the time to a ready answer and the API calls per request. Off and on
 * alternate request by request so both see the same machine; then every instance with a
 * workspace is deleted (its claim kept) and asked for again, which is the returning user's
 * cold start over a kept workspace.
 */
export async function workspacesCold(count: number): Promise<WorkspaceColdResult[]> {
  const namespace = await createNamespace("bench-workspaces");
  const health = answerHealth(namespace);
  await installTemplate(namespace);
  const limits = { MAX_INSTANCES_PER_CLIENT: "1000" };
  const off = await startHandler(namespace, { ...limits, WORKSPACES: "off" });
  const on = await startHandler(namespace, { ...limits, WORKSPACES: "on" });
  const kube = adminKube(namespace);
  const keys = { off: "bench-workspaces-off-01", on: "bench-workspaces-on-001" };
  const cold = async (url: string, key: string, id: string, into: number[]) => {
    const started = performance.now();
    const response = await httpGet(`${url}/instances/${id}?wait=30`, { "x-api-key": key });
    if (response.status !== 200) throw new Error(`workspaces: ${id} answered ${response.status}`);
    into.push(performance.now() - started);
  };
  try {
    say(`workspaces: ${count} cold starts each, off and on alternating`);
    const offTimes: number[] = [];
    const onTimes: number[] = [];
    const before = { off: await apiCalls(off.url), on: await apiCalls(on.url) };
    for (let i = 0; i < count; i++) {
      await cold(off.url, keys.off, `w${i}`, offTimes);
      await cold(on.url, keys.on, `w${i}`, onTimes);
    }
    const offCalls = (await apiCalls(off.url)) - before.off;
    const newCalls = (await apiCalls(on.url)) - before.on;

    say("workspaces: the same instances again over their kept workspaces");
    for (let i = 0; i < count; i++) {
      const response = await fetch(`${on.url}/instances/w${i}`, {
        method: "DELETE",
        headers: { "x-api-key": keys.on },
      });
      if (response.status !== 200)
        throw new Error(`workspaces: delete answered ${response.status}`);
    }
    // Each Pod gone first, so the next request is a cold start, not a wait for a terminating Pod.
    const names = Array.from({ length: count }, (_, i) =>
      instanceNameOf(clientIdOf(keys.on), `w${i}`),
    );
    for (const name of names) {
      while (await kube.pods.get(name)) await new Promise((r) => setTimeout(r, 100));
    }
    const keptTimes: number[] = [];
    const beforeKept = await apiCalls(on.url);
    for (let i = 0; i < count; i++) await cold(on.url, keys.on, `w${i}`, keptTimes);
    const keptCalls = (await apiCalls(on.url)) - beforeKept;

    return [
      { mode: "off", stats: stats(offTimes), callsPerRequest: offCalls / count },
      { mode: "on, new workspace", stats: stats(onTimes), callsPerRequest: newCalls / count },
      { mode: "on, kept workspace", stats: stats(keptTimes), callsPerRequest: keptCalls / count },
    ];
  } finally {
    kube.close();
    await off.stop();
    await on.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
