import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reap } from "../../reaper/reap.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import {
  adminKube,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
} from "../support/cluster.js";
import {
  installTemplate,
  LogCapture,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { EventStream, type GptmeServer, runInstancePod } from "../support/gptme.js";

const KEY = "keepalive-key-000001";
const IDLE_TIMEOUT_MS = 10_000;
const STREAM_MS = 120_000;

// The failure JupyterHub's idle culler is known for: a client connected to its server is
// reaped as idle because it sends no new requests. Here an event stream stays open for two
// minutes, five times the idle timeout, while the reaper runs every ten seconds.
describe("an open event stream keeps its instance alive", () => {
  let namespace: string;
  let handler: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let gptme: GptmeServer | undefined;
  let kube: Kube;

  const reapOnce = () =>
    reap(kube, {
      defaults: { idleTimeoutMs: IDLE_TIMEOUT_MS, maxLifetimeMs: 24 * 3600_000 },
      workspaceRetentionMs: 30 * 24 * 3600_000,
      dryRun: false,
      concurrency: 4,
      now: () => new Date(),
      log: createLogger({ level: "info", name: "fleet-reaper" }, new LogCapture()),
      // The gateway's own activity writes must keep the instance, without the reaper's probe.
      probe: false,
    });

  beforeAll(async () => {
    namespace = await createTestNamespace("keepalive");
    await installTemplate(namespace);
    handler = startHandler(namespace, { ACTIVITY_INTERVAL: "1s", IDLE_TIMEOUT: "10s" });
    http = await listenHandler(handler);
    kube = adminKube(namespace);
  });

  afterAll(async () => {
    await gptme?.stop();
    await http?.close();
    handler?.close();
    kube?.close();
    await deleteTestNamespace(namespace);
  });

  it(
    "survives reaper runs for two minutes while the stream is open, and is reaped after it closes",
    async () => {
      const instance = await (
        await handler.request("/instances/chat?wait=0", { apiKey: KEY })
      ).json();
      gptme = await runInstancePod(namespace, instance.name);
      const { path, token } = instance.endpoint;
      const put = await fetch(`${http.url}${path}/api/v2/conversations/long`, {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [] }),
      });
      const { session_id: session } = (await put.json()) as { session_id: string };
      const abort = new AbortController();
      const events = new EventStream(
        await fetch(
          `${http.url}${path}/api/v2/conversations/long/events?session_id=${session}&token=${token}`,
          { signal: abort.signal },
        ),
      );
      await events.next((e) => e.type === "connected");

      const until = Date.now() + STREAM_MS;
      let runs = 0;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS));
        const summary = await reapOnce();
        runs += 1;
        expect(summary.deleted, `reaper run ${runs}`).toBe(0);
        expect(await clientPodNames(namespace)).toEqual([instance.name]);
      }
      expect(runs).toBeGreaterThanOrEqual(10);
      // The stream itself stayed alive all along (gptme pings while it is open).
      const pings = events.events.filter((e) => (e.data as { type?: string }).type === "ping");
      expect(pings.length).toBeGreaterThan(5);

      abort.abort();
      await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS + 2_000));
      const summary = await reapOnce();
      expect(summary.deleted).toBe(1);
      expect(await clientPodNames(namespace)).toEqual([]);
    },
    STREAM_MS + 60_000,
  );
});
