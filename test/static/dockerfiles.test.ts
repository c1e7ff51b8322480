import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8"));

describe.each(["handler", "reaper"])("Dockerfile.%s", (kind) => {
  const file = resolve(ROOT, `Dockerfile.${kind}`);
  const text = readFileSync(file, "utf8");
  const finalStage = text.slice(text.lastIndexOf("\nFROM "));

  it("passes hadolint", () => {
    const out = execFileSync("bash", [resolve(ROOT, "scripts/hadolint.sh"), file], {
      encoding: "utf8",
    });
    expect(out).toBe("");
  });

  it("runs a file the build produces, the same as the package's bin", () => {
    // The reaper is a CLI: an entrypoint, whose flags a Pod gives as `args`.
    // The handler's Node flags, if any, come between node and the file (see below).
    const cmd = /^(?:CMD|ENTRYPOINT) \[(?:"node", (?:"--[^"]+", )*)?"([^"]+)"\]$/m.exec(
      finalStage,
    )?.[1];
    expect(cmd).toBe(`dist/${kind}/main.js`);
    expect(existsSync(resolve(ROOT, cmd ?? ""))).toBe(true);
    expect(pkg.bin[`fleet-${kind}`]).toBe(cmd);
  });

  it("ships one bundle per binary (only the code that runs) and package.json, as a non-root user", () => {
    // No node_modules in the image: esbuild bundled what runs (scripts/bundle.mjs).
    expect(finalStage).not.toContain("npm ci");
    const copies = finalStage.match(/^COPY .*$/gm) ?? [];
    expect(copies).toEqual([
      "COPY --from=build /usr/local/bin/node /usr/local/bin/node",
      "COPY package.json ./",
      "COPY --from=build /app/bundle ./dist",
    ]);
    expect(text).toContain("node scripts/bundle.mjs bundle");
    expect(finalStage).toMatch(/^USER [1-9]\d*:[1-9]\d*$/m);
    // The build stage is Node's slim image; the final one Debian's, with only its node binary.
    expect(text).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS build$/m);
    expect(finalStage).toMatch(/^FROM debian:bookworm-slim$/m);
    for (const label of ["title", "description", "version", "licenses"]) {
      expect(finalStage).toContain(`org.opencontainers.image.${label}=`);
    }
  });

  it("bundles into a file that runs on its own", () => {
    const dir = mkdtempSync(join(tmpdir(), "fleet-bundle-"));
    execFileSync("node", [resolve(ROOT, "scripts/bundle.mjs"), join(dir, "dist")], { cwd: ROOT });
    // As in the image: the bundle beside package.json, and no node_modules anywhere above it.
    copyFileSync(resolve(ROOT, "package.json"), join(dir, "package.json"));
    const out = execFileSync("node", [join(dir, "dist", kind, "main.js"), "--version"], {
      encoding: "utf8",
    });
    expect(out).toBe(`fleet-${kind} ${pkg.version}\n`);
    // Node's deprecated punycode would print a warning, not JSON, into the logs (see the
    // script), from the binary's file or any chunk it may load.
    const files = readdirSync(join(dir, "dist"), { recursive: true, encoding: "utf8" });
    const code = files.filter((file) => file.endsWith(".js"));
    expect(code).toContain(join(kind, "main.js"));
    for (const file of code) {
      expect(readFileSync(join(dir, "dist", file), "utf8")).not.toMatch(/\("punycode"\)/);
    }
  });
});

describe("the reaper's CronJob and its image", () => {
  it("gives the reaper its flags as args, which an entrypoint image appends to its command", () => {
    const cronJob = readFileSync(
      resolve(ROOT, "k8s/local/fleet-operator/07-reaper-cronjob.yaml"),
      "utf8",
    );
    const dockerfile = readFileSync(resolve(ROOT, "Dockerfile.reaper"), "utf8");
    // With a CMD instead, a Pod's args replace the command and the first flag is exec'd
    // (seen on the real node: exec "--time-limit": executable file not found).
    if (/^\s+args: \[/m.test(cronJob)) {
      expect(dockerfile).toMatch(/^ENTRYPOINT \["dist\/reaper\/main.js"\]$/m);
    }
    expect(cronJob).not.toMatch(/^\s+command:/m);
  });
});

/**
 * A replica's RSS beyond V8's heap (Node, code, buffers) after its gateway touched 10,000
 * distinct instances (scripts/bench/touch.ts): 73-89 MB measured as RSS before a collection
 * less the heap's total after it, which overstates it.
 */
const NON_HEAP_MB = 80;

// biome-ignore lint/suspicious/noExplicitAny: manifests are read field by field
type Manifest = any;

describe("the handler's Node flags and its Deployment's memory limit", () => {
  // Node would size V8's heap from the container's limit by itself (libuv reads cgroup v1's or
  // v2's), but for 256 Mi it lets the old generation grow to all of it (V8's floor, 256 MB)
  // and gives the young generation 1 MB semi-spaces, whose scavenges cost the gateway CPU (and
  // --max-old-space-size alone keeps them). The image caps both generations instead, as
  // measured (operations.md, "Handler memory").
  const dockerfile = readFileSync(resolve(ROOT, "Dockerfile.handler"), "utf8");
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? "[]") as string[];
  const flag = (name: string) =>
    Number(cmd.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3));
  const manifests = loadAllYaml(
    readFileSync(resolve(ROOT, "k8s/local/fleet-operator/06-handler.yaml"), "utf8"),
  ) as Manifest[];
  const container = manifests.find((o) => o.kind === "Deployment")?.spec?.template?.spec
    ?.containers?.[0];
  const limit = String(container?.resources?.limits?.memory ?? "");

  it("runs the handler with both V8 generations capped", () => {
    expect(cmd[0]).toBe("node");
    expect(cmd.at(-1)).toBe("dist/handler/main.js");
    expect(flag("max-old-space-size")).toBeGreaterThan(0);
    expect(flag("max-semi-space-size")).toBeGreaterThan(0);
  });

  it("leaves room under the Deployment's memory limit for what is not V8's heap", () => {
    expect(limit).toMatch(/^\d+Mi$/);
    const limitMb = Number.parseInt(limit, 10);
    // V8's heap at most: the old generation and three semi-spaces (two of the young
    // generation, and as much again for its large objects, seldom full); the rest of a
    // replica's RSS is Node, code and buffers, NON_HEAP_MB measured after touching 10,000
    // instances.
    const heapMb = flag("max-old-space-size") + 3 * flag("max-semi-space-size");
    expect(heapMb + NON_HEAP_MB).toBeLessThanOrEqual(limitMb);
  });
});
