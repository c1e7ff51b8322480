import { describe, expect, it } from "vitest";
import { sources } from "../../test/support/config-sources.js";
import { loadHandlerConfig } from "./load.js";
import { loadMemberConfig } from "./member.js";

describe("loadMemberConfig (the reaper's pool members)", () => {
  it("needs nothing of the handler's clients: a closed fleet's reaper has no API_KEYS_FILE", () => {
    const env = {
      POD_TEMPLATE: "gptme-client",
      WORKSPACES: "off",
      INSTANCE_TOKEN_SECRET: "k".repeat(32),
      CLIENT_AUTH: "keys",
    };
    expect(() => loadHandlerConfig({ env, readFile: () => "" })).toThrow(/^API_KEYS_FILE: /);
    const member = loadMemberConfig({ env, readFile: () => "" });
    expect(member).toMatchObject({ podTemplate: "gptme-client", workspaces: undefined });
    expect(member.instanceTokenKeys.kind).toBe("configured");
  });

  it("names a bad setting it does read", () => {
    expect(() => loadMemberConfig(sources({ DEFAULT_CPU_LIMIT: "lots" }))).toThrow(
      /^DEFAULT_CPU_LIMIT: /,
    );
  });
});
