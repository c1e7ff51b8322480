import { describe, expect, it } from "vitest";
import { LABEL_KIND } from "../instance/clientpod.js";
import {
  CODE_KIND,
  codeManifest,
  codeObjectName,
  codeRecordOf,
  isCodeExpired,
  isCodeShaped,
  newCode,
} from "./signin-code.js";

const instance = {
  name: "gptme-client-0123456789abcdef",
  uid: "5b0c1a4e-0000-4000-8000-000000000001",
  clientId: "0123456789abcdef0123456789abcdef",
  instanceId: "default",
};
const expiresAt = new Date("2026-01-01T00:01:00.000Z");

/** A manifest as the API server hands it back: with a uid and a resourceVersion. */
function stored(code: string, purpose: "login" | `preview:${number}` = "login") {
  const manifest = codeManifest(code, instance, purpose, expiresAt);
  return { ...manifest, metadata: { ...manifest.metadata, uid: "u-1", resourceVersion: "7" } };
}

describe("one-time codes", () => {
  it("are 256 random bits in base64url, never the same twice", () => {
    const codes = new Set(Array.from({ length: 1000 }, newCode));
    expect(codes.size).toBe(1000);
    for (const code of codes) {
      expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(code, "base64url")).toHaveLength(32);
      expect(isCodeShaped(code)).toBe(true);
    }
    expect(isCodeShaped("short")).toBe(false);
    expect(isCodeShaped(`${newCode()}=`)).toBe(false);
    expect(isCodeShaped(`${"a".repeat(42)}/`)).toBe(false);
  });

  it("are stored under a name that is a hash, and nowhere in their object", () => {
    const code = newCode();
    const name = codeObjectName(code);
    expect(name).toMatch(/^gptme-code-[0-9a-f]{64}$/);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(codeObjectName(code)).toBe(name);
    expect(codeObjectName(newCode())).not.toBe(name);
    const manifest = codeManifest(code, instance, "login", expiresAt);
    expect(JSON.stringify(manifest)).not.toContain(code);
    expect(manifest.metadata?.name).toBe(name);
  });

  it("are owned by the instance's ClientPod and labelled as the fleet's codes", () => {
    const manifest = codeManifest(newCode(), instance, "preview:5173", expiresAt);
    expect(manifest.metadata?.labels).toEqual({
      "app.kubernetes.io/managed-by": "gptme-fleet",
      [LABEL_KIND]: CODE_KIND,
      "gptme.ai/client": instance.clientId,
      "gptme.ai/instance": "default",
    });
    expect(manifest.metadata?.ownerReferences).toEqual([
      { apiVersion: "gptme.ai/v1", kind: "ClientPod", name: instance.name, uid: instance.uid },
    ]);
    expect(manifest.immutable).toBe(true);
    expect(manifest.data).toEqual({
      instance: instance.name,
      instanceUid: instance.uid,
      purpose: "preview:5173",
      expiresAt: expiresAt.toISOString(),
    });
  });

  it("refuse a purpose that is neither login nor a preview port", () => {
    // @ts-expect-error: the type already refuses it; the check guards untyped callers.
    expect(() => codeManifest(newCode(), instance, "admin", expiresAt)).toThrow(/purpose/);
  });

  it("read back into what they sign in to, and refuse objects the fleet did not make", () => {
    expect(codeRecordOf(stored(newCode(), "preview:8080"))).toEqual({
      objectUid: "u-1",
      resourceVersion: "7",
      instance,
      purpose: "preview:8080",
      expiresAt,
    });
    const other = stored(newCode());
    expect(codeRecordOf({ ...other, data: { ...other.data, purpose: "admin" } })).toBeUndefined();
    expect(codeRecordOf({ ...other, data: { ...other.data, expiresAt: "soon" } })).toBeUndefined();
    expect(
      codeRecordOf({ ...other, metadata: { ...other.metadata, name: "fleet-config" } }),
    ).toBeUndefined();
    expect(codeRecordOf({ metadata: { name: "x" } })).toBeUndefined();
  });

  it("expire at their expiry, not a moment later", () => {
    expect(isCodeExpired({ expiresAt }, new Date(expiresAt.getTime() - 1))).toBe(false);
    expect(isCodeExpired({ expiresAt }, expiresAt)).toBe(true);
  });
});
