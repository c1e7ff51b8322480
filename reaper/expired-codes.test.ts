import { describe, expect, it } from "vitest";
import { codeManifest, newCode } from "../shared/tokens/signin-code.js";
import { planCodes } from "./expired-codes.js";

const instance = {
  name: "gptme-client-0123456789abcdef",
  uid: "owner-uid",
  clientId: "0123456789abcdef0123456789abcdef",
  instanceId: "default",
};
const now = new Date("2026-01-01T12:00:00Z");

function object(uid: string, expiresAt: Date, extra: { deleting?: boolean } = {}) {
  const manifest = codeManifest(newCode(), instance, "login", expiresAt);
  return {
    ...manifest,
    metadata: {
      ...manifest.metadata,
      uid,
      resourceVersion: "1",
      deletionTimestamp: extra.deleting ? now : undefined,
    },
  };
}

describe("planCodes", () => {
  it("removes expired codes and unreadable objects, and keeps live ones", () => {
    const live = object("live", new Date(now.getTime() + 1));
    const expired = object("expired", now);
    const deleting = object("deleting", new Date(0), { deleting: true });
    const broken = { ...object("broken", new Date(0)), data: { purpose: "login" } };
    const plan = planCodes([live, expired, deleting, broken], now);
    expect(plan).toEqual([
      { name: expired.metadata.name, uid: "expired" },
      { name: broken.metadata.name, uid: "broken" },
    ]);
  });
});
