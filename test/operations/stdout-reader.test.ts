import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath } from "../support/cluster.js";
import { freePort, StuckPipe, spawnHandler, waitHealthy } from "../support/process.js";

const REAPER = resolve(import.meta.dirname, "../../dist/reaper/main.js");
/** The handler's shutdown bound: requests in flight, the last log lines, exit. */
const DRAIN_BOUND_MS = 20_000;

// Logs go to stdout; whoever reads it (a terminal, `| head -1`, a log collector) can go away
// or stop reading. Neither may keep a process from exiting within its bound.
describe("processes whose stdout reader goes away or stops reading", () => {
  let namespace: string;

  beforeAll(async () => {
    namespace = await createTestNamespace("stdout");
  });

  afterAll(async () => {
    await deleteTestNamespace(namespace);
  });

  const handlerEnv = async () => ({
    KUBECONFIG: kubeconfigPath(),
    NAMESPACE: namespace,
    HTTP_PORT: String(await freePort()),
  });

  /** Enough requests that their log lines fill any pipe buffer. */
  const logALot = async (url: string) => {
    for (let i = 0; i < 1_000; i += 50) {
      const batch = Array.from({ length: 50 }, () => fetch(`${url}/healthz`));
      for (const res of await Promise.all(batch)) expect(res.status).toBe(200);
    }
  };

  it("the handler exits 0 on SIGTERM after its stdout reader closed the pipe (| head -1)", async () => {
    const handler = spawnHandler(await handlerEnv());
    await waitHealthy(handler);
    handler.proc.stdout?.destroy();
    await logALot(handler.url);
    const signalled = Date.now();
    handler.proc.kill("SIGTERM");
    expect(await handler.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(DRAIN_BOUND_MS);
  });

  it("the handler keeps serving while its stdout reader stops reading, and exits within the bound", async () => {
    const pipe = new StuckPipe();
    try {
      const handler = spawnHandler(await handlerEnv(), pipe.writer);
      await waitHealthy(handler);
      // Each of these logs a line that cannot be written: nothing may wait for them.
      await logALot(handler.url);
      const signalled = Date.now();
      handler.proc.kill("SIGTERM");
      expect(await handler.exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(DRAIN_BOUND_MS);
    } finally {
      pipe.close();
    }
  });

  it.each(["closed", "stuck"] as const)(
    "the reaper finishes its pass and exits 0 with its stdout reader %s",
    async (reader) => {
      const pipe = reader === "stuck" ? new StuckPipe() : undefined;
      try {
        const started = Date.now();
        const proc = spawn(process.execPath, [REAPER], {
          env: { PATH: process.env.PATH, KUBECONFIG: kubeconfigPath(), NAMESPACE: namespace },
          stdio: ["ignore", pipe?.writer ?? "pipe", "inherit"],
        });
        proc.stdout?.destroy();
        const code = await new Promise((r) => proc.on("exit", (c) => r(c)));
        expect(code).toBe(0);
        // A pass over an empty namespace takes well under a second; the last log lines get
        // at most 5 s to reach a reader that stopped reading.
        expect(Date.now() - started).toBeLessThan(10_000);
      } finally {
        pipe?.close();
      }
    },
  );
});
