import { describe, expect, it } from "vitest";
import { type HandlerConfig, loadHandlerConfig, parseApiKeys } from "../../shared/config/load.js";
import type { Current } from "../../shared/config/reloading-file.js";
import { answerOf, fleetErrorOf } from "../errors/answer.js";
import { clientOfKey, requireAdmin } from "./auth.js";

/** A credential a test changes, as a reloaded file would. */
function changing<T>(value: T): Current<T> & { set(next: T): void } {
  let now = value;
  return {
    current: () => now,
    set: (next) => {
      now = next;
    },
  };
}

function refusal(call: () => unknown) {
  try {
    call();
  } catch (error) {
    return answerOf(fleetErrorOf(error)).body;
  }
  throw new Error("not refused");
}

const base = (): HandlerConfig =>
  loadHandlerConfig({ env: { CLIENT_AUTH: "open" }, readFile: () => "" });

describe("credentials are read per request", () => {
  it("a key removed from the allowlist is refused from its next request; a new one works", () => {
    const apiKeys = changing(parseApiKeys("old-key-1234\n"));
    const config = { ...base(), apiKeys };
    expect(clientOfKey("old-key-1234", config).clientId).toMatch(/^[0-9a-f]{16,}$/);
    expect(refusal(() => clientOfKey("new-key-1234", config))).toMatchObject({ statusCode: 403 });
    apiKeys.set(parseApiKeys("new-key-1234\n"));
    expect(refusal(() => clientOfKey("old-key-1234", config))).toMatchObject({
      statusCode: 403,
      code: "unknown_api_key",
    });
    expect(clientOfKey("new-key-1234", config)).toEqual({
      clientId: expect.stringMatching(/^[0-9a-f]{16,}$/),
      plan: undefined,
    });
    apiKeys.set(parseApiKeys("new-key-1234 pro\n"));
    expect(clientOfKey("new-key-1234", config).plan).toBe("pro");
  });

  it("a changed admin token replaces the old one", () => {
    const adminToken = changing("old-admin-token");
    const config = { ...base(), adminToken };
    expect(() => requireAdmin("Bearer old-admin-token", config)).not.toThrow();
    adminToken.set("new-admin-token");
    expect(refusal(() => requireAdmin("Bearer old-admin-token", config))).toMatchObject({
      statusCode: 401,
      code: "unauthorized",
    });
    expect(() => requireAdmin("Bearer new-admin-token", config)).not.toThrow();
  });
});
