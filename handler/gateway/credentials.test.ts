import { describe, expect, it } from "vitest";
import type { InstanceRecord } from "../../shared/instance/record.js";
import {
  instanceTokenOf,
  type TokenKeys,
  tokenKeyIdOf,
} from "../../shared/tokens/instance-token.js";
import { sseTokenOf } from "../signin/sse-token.js";
import { credentialOf, presentedToken } from "./credentials.js";
import { parseGatewayUrl } from "./request.js";

const secret = "k".repeat(40);
const key = { id: tokenKeyIdOf(secret), secret };
const keys: TokenKeys = { current: key, byId: new Map([[key.id, key]]) };
const record = { uid: "uid-1", tokenKeyId: key.id } as InstanceRecord;
const expected = instanceTokenOf(key, "uid-1");
const now = new Date("2026-01-01T12:00:00Z");
const sse = sseTokenOf(key, "uid-1", now);
const PREFIX = "/api/v1/instances/gptme-client-0123456789abcdef";

function kindOf(method: string, path: string, headers: Record<string, string> = {}) {
  const parsed = parseGatewayUrl(`${PREFIX}${path}`);
  const presented = parsed && presentedToken(method, headers, parsed);
  return presented && credentialOf(presented, expected, record, keys, now, 3600_000);
}

describe("gateway credentials", () => {
  it("takes the instance token anywhere, in the header or the query", () => {
    expect(kindOf("GET", "/api/v2/conversations", { authorization: `Bearer ${expected}` })).toBe(
      "instance-token",
    );
    expect(kindOf("POST", `/api/v2/conversations/c/step?token=${expected}`)).toBe("instance-token");
  });

  it("takes an event-stream token only as ?token= of a GET of an event stream", () => {
    expect(kindOf("GET", `/api/v2/conversations/c/events?session_id=s&token=${sse}`)).toBe(
      "sse-token",
    );
    expect(kindOf("GET", `/api/v2/conversations?token=${sse}`)).toBeUndefined();
    expect(kindOf("POST", `/api/v2/conversations/c/events?token=${sse}`)).toBeUndefined();
    expect(
      kindOf("GET", "/api/v2/conversations/c/events", { authorization: `Bearer ${sse}` }),
    ).toBeUndefined();
    expect(
      kindOf("GET", `/api/v2/conversations/c/events?token=${sse}`, { upgrade: "websocket" }),
    ).toBeUndefined();
    expect(kindOf("GET", "/api/v2/conversations/c/events")).toBeUndefined();
  });
});
