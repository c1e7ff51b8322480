import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { createTestNamespace, deleteTestNamespace, eventually } from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { ISSUER, JwksServer, type SigningKey, signingKey, token } from "../support/jwks.js";

const KEY = "identity-key-AAAAAAAA";

/** The instance name a platform user (issuer, subject) reaches for an instance id. */
const nameOf = (subject: string, instanceId: string) =>
  instanceNameOf(clientIdOf(`${ISSUER}\n${subject}`), instanceId);

describe("platform identities on the real control plane", () => {
  let namespace: string;
  const jwks = new JwksServer();
  let key: SigningKey;
  let handler: TestHandler;

  const get = (path: string, jwt: string) =>
    handler.request(path, { headers: { authorization: `Bearer ${jwt}` } });

  beforeAll(async () => {
    namespace = await createTestNamespace("identity");
    await installTemplate(namespace);
    key = await signingKey("RS256", "rsa-1");
    jwks.keys = [key.publicJwk];
    await jwks.start();
    const dir = mkdtempSync(join(tmpdir(), "identity-"));
    writeFileSync(join(dir, "keys"), `${KEY}\n`);
    handler = startHandler(namespace, {
      CLIENT_AUTH: "keys,jwt",
      API_KEYS_FILE: join(dir, "keys"),
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
    });
    await eventually(async () => (jwks.fetches > 0 ? true : undefined), "the JWKS fetch");
  });

  afterAll(async () => {
    handler?.close();
    await jwks.stop();
    await deleteTestNamespace(namespace);
  });

  it("gives the same person the same instance with every new token", async () => {
    const first = await get("/instances/jwt?wait=0", await token(key, { jti: "a" }));
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ name: nameOf("user-1", "jwt"), created: true });
    const second = await get("/instances/jwt?wait=0", await token(key, { jti: "b", iat: 1 }));
    expect(second.status).toBeLessThan(300);
    expect(await second.json()).toMatchObject({ name: nameOf("user-1", "jwt"), created: false });
    const other = await get("/instances/jwt?wait=0", await token(key, { sub: "user-2" }));
    expect((await other.json()).name).toBe(nameOf("user-2", "jwt"));
    // The caller's own instances only, and a login code for a JWT's instance.
    const listed = await (await get("/instances", await token(key))).json();
    expect(listed.items.map((i: { name: string }) => i.name)).toEqual([nameOf("user-1", "jwt")]);
    const login = await handler.request("/instances/jwt/login?wait=0", {
      method: "POST",
      headers: { authorization: `Bearer ${await token(key)}` },
    });
    expect(login.status).toBeLessThan(300);
    expect((await login.json()).login.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses a failing token with 401 invalid_credentials, logging why but never the token", async () => {
    const expired = await token(key, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const res = await get("/instances/jwt?wait=0", expired);
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe("invalid_credentials");
    const logs = handler.logs.lines.join("\n");
    expect(logs).toContain("refused a sign-in token");
    expect(logs).toContain("ERR_JWT_EXPIRED");
    expect(logs).not.toContain(expired);
  });

  it("still takes API keys from API_KEYS_FILE with keys,jwt", async () => {
    expect((await handler.request("/instances/key?wait=0", { apiKey: KEY })).status).toBe(202);
    const stranger = await handler.request("/instances/key?wait=0", { apiKey: "stranger-key-1" });
    expect(stranger.status).toBe(403);
  });

  it("with jwt alone, refuses API keys", async () => {
    const jwtOnly = startHandler(namespace, {
      CLIENT_AUTH: "jwt",
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
    });
    try {
      const res = await jwtOnly.request("/instances/key?wait=0", { apiKey: KEY });
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe("invalid_credentials");
      expect((await jwtOnly.request("/instances/key?wait=0")).status).toBe(401);
    } finally {
      jwtOnly.close();
    }
  });

  it("answers 503 identity_unavailable while the JWKS is down at start, then serves", async () => {
    const late = new JwksServer();
    late.keys = [key.publicJwk];
    late.up = false;
    await late.start();
    const waiting = startHandler(namespace, {
      CLIENT_AUTH: "jwt",
      JWT_JWKS_URL: late.url,
      JWT_ISSUER: ISSUER,
    });
    try {
      await eventually(async () => (late.fetches > 0 ? true : undefined), "a first JWKS fetch");
      const res = await waiting.request("/instances/late?wait=0", {
        headers: { authorization: `Bearer ${await token(key)}` },
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: "identity_unavailable" });
      expect((await waiting.request("/healthz")).status).toBe(200);
      late.up = true;
      const served = await eventually(async () => {
        const again = await waiting.request("/instances/late?wait=0", {
          headers: { authorization: `Bearer ${await token(key)}` },
        });
        return again.status === 503 ? undefined : again;
      }, "serving once the JWKS answers");
      expect(served.status).toBe(202);
    } finally {
      waiting.close();
      await late.stop();
    }
  });
});
