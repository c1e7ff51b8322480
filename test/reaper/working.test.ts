import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReapSummary, reap } from "../../reaper/reap.js";
import type { Kube } from "../../shared/kube/client.js";
import { createLogger } from "../../shared/log.js";
import { type ChatStub, startChatStub } from "../support/chat-stub.js";
import {
  adminKube,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler, type TestHandler } from "../support/fleet.js";
import { type GptmeServer, runInstancePod } from "../support/gptme.js";

const KEY = "reaper-working-key-01";
const TOKEN_DELAY_MS = 500;
const TOKENS = 60;
const TOOL_SECONDS = 15;

// A real gptme-server at the KWOK pod's loopback IP, its model served by a stub on loopback
// that streams slowly (the LLM provider is outside the fleet). Nobody talks to the fleet
// while the instance works, so by the clock it is idle after one second.
describe("reaper and an instance at work", () => {
  let namespace: string;
  let handler: TestHandler;
  let kube: Kube;
  let stub: ChatStub;
  const servers: GptmeServer[] = [];

  const reapOnce = async () => {
    const logs = new LogCapture();
    const summary = await reap(kube, {
      defaults: { idleTimeoutMs: 1_000, maxLifetimeMs: 3600_000 },
      workspaceRetentionMs: 30 * 24 * 3600_000,
      dryRun: false,
      concurrency: 4,
      now: () => new Date(),
      log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
      probe: { timeoutMs: 2_000 },
    });
    const lines = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "reap");
    return { summary, lines, at: Date.now() };
  };

  /** An instance whose gptme-server was asked, with the instance's token, to take a step. */
  const startStep = async (id: string, message: string) => {
    const body = await (await handler.request(`/instances/${id}?wait=0`, { apiKey: KEY })).json();
    const server = await runInstancePod(namespace, body.name, [], {
      OPENAI_BASE_URL: stub.baseUrl,
      OPENAI_API_KEY: "stub",
    });
    servers.push(server);
    const call = (path: string, payload: object, method = "POST") =>
      fetch(`${server.url}/api/v2/conversations/${path}`, {
        method,
        headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
        body: JSON.stringify(payload),
      });
    const put = await call(id, { messages: [] }, "PUT");
    const { session_id } = (await put.json()) as { session_id: string };
    await call(id, { role: "user", content: message });
    const step = await call(`${id}/step`, {
      model: "local/slow",
      session_id,
      auto_confirm: true,
    });
    expect(step.status).toBe(200);
    return { name: body.name as string, server };
  };

  beforeAll(async () => {
    namespace = await createTestNamespace("reaper-working");
    await installTemplate(namespace);
    handler = startHandler(namespace);
    kube = adminKube(namespace);
    // Slow only for the essay; quick for the tool call, its follow-up and whatever else gptme
    // asks its model on the side (a conversation's name, say).
    stub = await startChatStub((last) =>
      last === "write a long essay"
        ? { tokens: Array.from({ length: TOKENS }, (_, i) => `word${i} `), delayMs: TOKEN_DELAY_MS }
        : last === "run the tests"
          ? { tokens: [`\`\`\`shell\nsleep ${TOOL_SECONDS}\n\`\`\`\n`], delayMs: 10 }
          : { tokens: ["All ", "done."], delayMs: 10 },
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await stub?.close();
    handler?.close();
    kube?.close();
    await deleteTestNamespace(namespace);
  });

  it("keeps an instance while its model generates for 30 s, and reaps it once the step is done", async () => {
    const { name, server } = await startStep("essay", "write a long essay");
    await eventually(async () => {
      const health = await (await fetch(`${server.url}/api/v2/server/health`)).json();
      return health.generating_count === 1 ? true : undefined;
    }, "the step to start generating");

    const runs: { summary: ReapSummary; verdict: string; at: number }[] = [];
    for (;;) {
      const { summary, lines, at } = await reapOnce();
      const line = lines.find((l) => l.name === name);
      runs.push({ summary, verdict: line?.reason ?? "none", at });
      if (summary.deleted > 0) {
        expect(line).toMatchObject({
          reason: "idle",
          result: "deleted",
          generating: 0,
          sseConnections: 0,
        });
        break;
      }
      expect(line).toMatchObject({
        reason: "busy",
        result: "skipped",
        generating: 1,
        sseConnections: 0,
        detail: "activity recorded",
      });
      expect(runs.length).toBeLessThan(40);
      // Past the one-second idle timeout again, since the busy verdict wrote activity.
      await new Promise((r) => setTimeout(r, 2_000));
    }
    const completion = stub.completions.find((c) => c.lastMessage === "write a long essay");
    console.log(
      `generating: ${runs.length - 1} passes kept it over ${((runs.at(-1)?.at ?? 0) - (completion?.startedAt ?? 0)) / 1000} s, then it went`,
    );
    // Every pass while the model streamed kept it; the one that deleted it came after.
    expect(runs.length - 1).toBeGreaterThanOrEqual(10);
    expect(completion?.endedAt).toBeDefined();
    expect(runs.at(-1)?.at).toBeGreaterThan(completion?.endedAt ?? Infinity);
    expect(runs.slice(0, -1).every((r) => r.at < (completion?.endedAt ?? 0) + 5_000)).toBe(true);
    // Nothing of the work was lost: the whole answer is in the conversation.
    const conversation = await (
      await fetch(`${server.url}/api/v2/conversations/essay`, {
        headers: { authorization: `Bearer ${server.token}` },
      })
    ).json();
    expect(JSON.stringify(conversation)).toContain(`word${TOKENS - 1}`);
    expect(await clientPodNames(namespace)).not.toContain(name);
    // Its pod is gone: so is its container (and the pod IP is free for the next one).
    await server.stop();
  }, 120_000);

  // The window gptme-server leaves open: between two model turns, while a tool (here a shell
  // command) runs, it reports nothing generating, and no unauthenticated signal (nor
  // /api/v2/sessions, with the token) says a step is in progress. An instance nobody watches
  // is then idle to the reaper and deleted mid-step. Pinned so that a gptme-server that
  // closes the window (or a fleet change that works around it) shows up here.
  it("deletes an instance whose agent runs a tool with nobody watching (the known window)", async () => {
    const { name, server } = await startStep("tests", "run the tests");
    // The model has asked for the tool, and gptme has not come back with its output yet.
    await eventually(async () => {
      const asked = stub.completions.some((c) => c.lastMessage === "run the tests" && c.endedAt);
      return asked ? true : undefined;
    }, "the model to ask for the tool");
    await new Promise((r) => setTimeout(r, 1_500));
    const health = await (await fetch(`${server.url}/api/v2/server/health`)).json();
    expect(health).toMatchObject({ generating_count: 0, session_count: 1 });
    expect(stub.completions.some((c) => c.lastMessage.includes("Ran command"))).toBe(false);

    const { summary, lines } = await reapOnce();
    expect(summary).toMatchObject({ deleted: 1, busy: 0 });
    expect(lines.find((l) => l.name === name)).toMatchObject({
      reason: "idle",
      result: "deleted",
      generating: 0,
      sseConnections: 0,
    });
    // The tool was still running: its output reached the model only afterwards.
    expect(stub.completions.some((c) => c.lastMessage.includes("Ran command"))).toBe(false);
    await eventually(
      async () =>
        stub.completions.some((c) => c.lastMessage.includes("Ran command")) ? true : undefined,
      "the tool to finish",
      TOOL_SECONDS * 1000 + 10_000,
    );
  }, 120_000);
});
