import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminKubeConfig,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";

const KEY = "phase-key-00000001";
const ROOT = resolve(import.meta.dirname, "../..");

// `kubectl get cpod` PHASE follows the Pod: the first request that sees the Pod's phase
// differ from the one recorded writes it; while nothing changes, the warm path stays one read.
describe("PHASE follows the Pod", () => {
  let namespace: string;
  let handler: TestHandler;
  const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
  const phaseOf = async (name: string) =>
    (
      (await custom.getNamespacedCustomObject({
        group: "gptme.ai",
        version: "v1",
        namespace,
        plural: "clientpods",
        name,
      })) as { status?: { phase?: string } }
    ).status?.phase;

  beforeAll(async () => {
    namespace = await createTestNamespace("phase");
    await installTemplate(namespace);
    handler = startHandler(namespace);
  });

  afterAll(async () => {
    handler?.close();
    await deleteTestNamespace(namespace);
  });

  it("is Pending at creation, Running once a request sees the Pod run, then costs nothing", async () => {
    const first = await (await handler.request("/instances/p?wait=0", { apiKey: KEY })).json();
    expect(await phaseOf(first.name)).toBe("Pending");
    // KWOK runs the Pod within moments; nothing writes until a request comes.
    await eventually(async () => {
      const pod = await handler.kube.pods.get(first.name);
      return pod?.status?.phase === "Running" ? true : undefined;
    }, "the Pod to run");
    expect(await phaseOf(first.name)).toBe("Pending");

    handler.counter.reset();
    await handler.request("/instances/p?wait=0", { apiKey: KEY });
    expect(handler.counter.calls).toEqual(["get pods", "patch clientpods", "patch pods"]);
    expect(await phaseOf(first.name)).toBe("Running");

    handler.counter.reset();
    await handler.request("/instances/p?wait=0", { apiKey: KEY });
    expect(handler.counter.calls).toEqual(["get pods"]);
  });
});

describe("versions", () => {
  it("both binaries answer --version", () => {
    for (const [bin, name] of [
      ["dist/handler/main.js", "fleet-handler"],
      ["dist/reaper/main.js", "fleet-reaper"],
    ]) {
      const run = spawnSync("node", [resolve(ROOT, bin as string), "--version"], {
        encoding: "utf8",
        env: { PATH: process.env.PATH },
      });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(`${name} 0.1.0\n`);
    }
  });
});
