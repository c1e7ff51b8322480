import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Body,
  deleteInstance,
  exec,
  getInstance,
  handlerPods,
  podNameOf,
} from "./support/fleet.js";

/** What the kernel says about a container's first process. */
function processFacts(pod: string, container: string) {
  const status = exec(pod, container, ["cat", "/proc/1/status"]);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim();
  return {
    uids: field("Uid")?.split(/\s+/),
    gids: field("Gid")?.split(/\s+/),
    noNewPrivs: field("NoNewPrivs"),
    capEff: field("CapEff"),
    capBnd: field("CapBnd"),
    seccomp: field("Seccomp"),
  };
}

const RESTRICTED = {
  // real, effective, saved and filesystem ids: all the image's non-root user
  uids: ["1000", "1000", "1000", "1000"],
  gids: ["1000", "1000", "1000", "1000"],
  noNewPrivs: "1", // allowPrivilegeEscalation: false
  capEff: "0000000000000000", // capabilities drop ALL
  capBnd: "0000000000000000",
  seccomp: "2", // RuntimeDefault: a filter is installed
};

// The restricted Pod Security Standard as the kernel enforces it in real containers, not
// just as the API server admits the specs.
describe("the restricted standard in real containers", () => {
  let instance: Body;
  beforeAll(async () => {
    const { status, body } = await getInstance("e2e-pss-key-0000001", "pss");
    expect(status, JSON.stringify(body)).toBe(200);
    instance = body;
  });
  afterAll(async () => {
    if (instance?.name) await deleteInstance(instance.name);
  });

  it("runs the handler as uid 1000, unprivileged, with no capabilities", async () => {
    for (const pod of await handlerPods()) {
      expect(processFacts(pod.metadata?.name ?? "", "handler")).toEqual(RESTRICTED);
    }
  });

  it("gives the handler a read-only root filesystem", async () => {
    const pod = (await handlerPods())[0]?.metadata?.name ?? "";
    const out = exec(pod, "handler", [
      "node",
      "-e",
      `try { require("node:fs").writeFileSync("/app/x", "x"); console.log("written") }
       catch (e) { console.log(e.code) }`,
    ]).trim();
    expect(out).toBe("EROFS");
  });

  it("runs a client's gptme-server as uid 1000, unprivileged, with no capabilities", () => {
    expect(processFacts(podNameOf(instance), "gptme-server")).toEqual(RESTRICTED);
  });

  it("gives gptme-server a writable HOME of its own", () => {
    const out = exec(podNameOf(instance), "gptme-server", [
      "python3",
      "-c",
      "import os, pathlib; p = pathlib.Path.home() / '.probe'; p.write_text('x'); print(os.environ['HOME'], p.read_text())",
    ]).trim();
    expect(out).toMatch(/^\/\S+ x$/);
  });
});
