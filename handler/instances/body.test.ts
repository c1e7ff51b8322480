import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parseTokenKeys, tokenKeyIdOf } from "../../shared/tokens/instance-token.js";
import { endpointOf, instanceBody } from "./body.js";

const created = new Date("2026-01-01T00:00:00Z");
const record = {
  name: "gptme-client-0123456789abcdef",
  podName: "gptme-client-0123456789abcdef",
  uid: "3f2a9c1e-0000-4000-8000-000000000001",
  tokenSubject: "3f2a9c1e-0000-4000-8000-000000000001",
  tokenKeyId: "0123456789ab" as string | undefined,
  instanceId: "default",
  clientId: "c".repeat(32),
  createdAt: created,
  lastActivity: undefined,
  idleTimeoutSeconds: undefined,
  maxLifetimeSeconds: undefined,
  workspace: undefined,
  plan: "pro" as string | undefined,
};
const readyPod: V1Pod = {
  metadata: { name: record.name, annotations: { "gptme.ai/serving-since": created.toISOString() } },
  spec: { containers: [{ name: "s", ports: [{ name: "http", containerPort: 5700 }] }] },
  status: { phase: "Running", podIP: "10.0.0.12", conditions: [{ type: "Ready", status: "True" }] },
};

describe("instanceBody", () => {
  it("is the contract's instance body", () => {
    const defaults = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 };
    const endpoint = { path: `/api/v1/instances/${record.name}`, url: null, token: "t" };
    expect(instanceBody(record, readyPod, true, defaults, endpoint)).toEqual({
      name: record.name,
      instanceId: "default",
      plan: "pro",
      status: "ready",
      created: true,
      connection: { host: "10.0.0.12", port: 5700, url: "http://10.0.0.12:5700" },
      endpoint,
      workspace: null,
      createdAt: "2026-01-01T00:00:00.000Z",
      lastActivity: "2026-01-01T00:00:00.000Z",
      expiresAt: "2026-01-01T00:30:00.000Z",
    });
    expect(instanceBody(record, readyPod, false, defaults, null, true).status).toBe("terminating");
    // An instance from before plans names none.
    expect(instanceBody({ ...record, plan: undefined }, readyPod, false, defaults, null).plan).toBe(
      null,
    );
  });

  it("says which workspace the instance has, and whether it was kept from an earlier one", () => {
    const defaults = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 24 * 3600_000 };
    const workspace = { name: record.name, state: "kept" as const };
    expect(
      instanceBody({ ...record, workspace }, readyPod, true, defaults, null).workspace,
    ).toEqual(workspace);
  });
});

describe("endpointOf", () => {
  const key = "k".repeat(40);
  const keys = parseTokenKeys(key);
  const own = { ...record, tokenKeyId: tokenKeyIdOf(key) };

  it("is the gateway path, the public URL when one is set, and the instance's token", () => {
    const endpoint = endpointOf(own, "https://fleet.example.com", keys);
    expect(endpoint).toMatchObject({
      path: `/api/v1/instances/${record.name}`,
      url: `https://fleet.example.com/api/v1/instances/${record.name}`,
    });
    expect(endpoint?.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(endpointOf(own, undefined, keys)?.url).toBeNull();
  });

  it("shows no token without keys (admin views), and is null for instances without one", () => {
    expect(endpointOf(own, undefined, undefined)).toEqual({
      path: `/api/v1/instances/${record.name}`,
      url: null,
    });
    expect(endpointOf({ ...own, tokenKeyId: undefined }, undefined, keys)).toBeNull();
  });

  it("has no token when the instance's key is no longer in force", () => {
    expect(endpointOf(own, undefined, parseTokenKeys("z".repeat(40)))?.token).toBeUndefined();
  });
});
