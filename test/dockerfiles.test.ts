import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
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
    const cmd = /^CMD \[(?:"node", )?"([^"]+)"\]$/m.exec(finalStage)?.[1];
    expect(cmd).toBe(`dist/${kind}/main.js`);
    expect(existsSync(resolve(ROOT, cmd ?? ""))).toBe(true);
    expect(pkg.bin[`fleet-${kind}`]).toBe(cmd);
  });

  it("ships only production dependencies and the compiled code, as a non-root user", () => {
    expect(finalStage).toContain("npm ci --omit=dev");
    const copies = finalStage.match(/^COPY .*$/gm) ?? [];
    expect(copies).toEqual([
      "COPY package.json package-lock.json ./",
      "COPY --from=build /app/dist ./dist",
    ]);
    expect(finalStage).toMatch(/^USER [1-9]\d*:[1-9]\d*$/m);
    expect(finalStage).toMatch(/^FROM node:\$\{NODE_VERSION\}-[a-z]+-slim$/m);
  });
});
