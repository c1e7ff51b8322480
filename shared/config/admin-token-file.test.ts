import { mkdtempSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadHandlerConfig } from "./load.js";
import type { ReloadingFile } from "./reloading-file.js";

// 06-handler.yaml mounts the admin token from the optional Secret fleet-secrets: on a
// cluster without it the file is absent, the handler starts with the admin API off, and the
// token takes effect once the Secret (and so the file) appears.
describe("ADMIN_TOKEN_FILE from an optional Secret", () => {
  it("is off while the file is absent, on once it appears, off again once it goes", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "fleet-admin-")), "ADMIN_TOKEN");
    const config = loadHandlerConfig({
      env: { CLIENT_AUTH: "open", ADMIN_TOKEN_FILE: path },
      readFile: (p) => readFileSync(p, "utf8"),
    });
    const file = config.credentialFiles[0] as ReloadingFile<string>;
    expect(config.adminToken?.current()).toBe("");

    writeFileSync(path, "a-new-admin-token\n");
    await file.check();
    expect(config.adminToken?.current()).toBe("a-new-admin-token");

    // An empty file is a mistake, not a removal: the token in use stays.
    writeFileSync(path, "");
    await file.check();
    expect(config.adminToken?.current()).toBe("a-new-admin-token");

    unlinkSync(path);
    await file.check();
    expect(config.adminToken?.current()).toBe("");
  });
});
