import { base64url, exportSPKI, importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JwtSettings } from "../../shared/config/jwt-settings.js";
import { fixed } from "../../shared/config/reloading-file.js";
import { createLogger } from "../../shared/log.js";
import { ISSUER, JwksServer, type SigningKey, signingKey, token } from "../../test/support/jwks.js";
import { InvalidJwtError, JwksUnavailableError, JwtVerifier } from "./jwt.js";

const log = createLogger({ level: "silent", name: "test" }, process.stdout);

const settings = (jwksUrl: string, extra: Partial<JwtSettings> = {}): JwtSettings => ({
  jwksUrl,
  issuer: ISSUER,
  audience: "authenticated",
  refreshMs: 1_000,
  planClaim: undefined,
  secret: undefined,
  ...extra,
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("platform JWTs against a JWKS on loopback", () => {
  const jwks = new JwksServer();
  let rsa: SigningKey;
  let ec: SigningKey;
  let verifier: JwtVerifier;

  beforeAll(async () => {
    rsa = await signingKey("RS256", "rsa-1");
    ec = await signingKey("ES256", "ec-1");
    jwks.keys = [rsa.publicJwk, ec.publicJwk];
    await jwks.start();
    verifier = new JwtVerifier(settings(jwks.url), log);
    verifier.start();
  });

  afterAll(async () => {
    verifier.stop();
    await jwks.stop();
  });

  const refused = (t: string) => expect(verifier.verify(t)).rejects.toBeInstanceOf(InvalidJwtError);

  it("accepts RS256 and ES256, naming the issuer and subject", async () => {
    await until(() => jwks.fetches > 0);
    await expect(verifier.verify(await token(rsa))).resolves.toEqual({
      issuer: ISSUER,
      subject: "user-1",
    });
    await expect(verifier.verify(await token(ec, { sub: "user-2" }))).resolves.toEqual({
      issuer: ISSUER,
      subject: "user-2",
    });
  });

  it("accepts EdDSA", async () => {
    const ed = await signingKey("EdDSA", "ed-1");
    jwks.keys = [...jwks.keys, ed.publicJwk];
    await new Promise((r) => setTimeout(r, 1_100));
    await expect(verifier.verify(await token(ed))).resolves.toMatchObject({ subject: "user-1" });
  });

  it("picks up a key rotated into the JWKS without a restart", async () => {
    const rotated = await signingKey("RS256", "rsa-2");
    jwks.keys = [...jwks.keys, rotated.publicJwk];
    // Within the refresh bound of the last fetch an unknown kid is refused, not fetched for.
    const before = jwks.fetches;
    await new Promise((r) => setTimeout(r, 1_100));
    await expect(verifier.verify(await token(rotated))).resolves.toMatchObject({
      subject: "user-1",
    });
    expect(jwks.fetches).toBeGreaterThan(before);
  });

  it("refuses an unknown kid without asking the issuer more than once per refresh", async () => {
    const stranger = await signingKey("RS256", "nobody");
    await refused(await token(stranger));
    const fetches = jwks.fetches;
    for (let i = 0; i < 20; i++) await refused(await token(stranger, { jti: String(i) }));
    expect(jwks.fetches - fetches).toBeLessThanOrEqual(1);
  });

  it("refuses expired, not-yet-valid, foreign-issuer and foreign-audience tokens", async () => {
    const now = Math.floor(Date.now() / 1000);
    // Well past the 30 s leeway either way (a slow machine's second must not decide).
    await refused(await token(rsa, { exp: now - 45 }));
    await refused(await token(rsa, { nbf: now + 45 }));
    await refused(await token(rsa, { iss: "https://evil.example.com/auth/v1" }));
    await refused(await token(rsa, { aud: "anon" }));
    await refused(await token(rsa, { sub: undefined }));
    // Within the 30 s leeway.
    await expect(verifier.verify(await token(rsa, { exp: now - 15 }))).resolves.toBeDefined();
    await expect(verifier.verify(await token(rsa, { nbf: now + 15 }))).resolves.toBeDefined();
  });

  it("refuses alg none, HS256 signed with the public key, and a tampered payload", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = base64url.encode(
      JSON.stringify({ sub: "admin", aud: "authenticated", iss: ISSUER, exp: 9999999999 }),
    );
    await refused(`${header}.${payload}.`);
    // The classic confusion: the RSA public key (public, after all) used as an HMAC secret.
    const publicPem = await exportSPKI((await importJWK(rsa.publicJwk, "RS256")) as CryptoKey);
    const confused = await new SignJWT({
      sub: "admin",
      aud: "authenticated",
      iss: ISSUER,
      exp: Math.floor(Date.now() / 1000) + 60,
    })
      .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
      .sign(new TextEncoder().encode(publicPem));
    await refused(confused);
    const [h, , s] = (await token(rsa)).split(".");
    const forged = base64url.encode(
      JSON.stringify({ sub: "someone-else", aud: "authenticated", iss: ISSUER, exp: 9999999999 }),
    );
    await refused(`${h}.${forged}.${s}`);
    await refused("not-a-jwt");
  });

  it("accepts HS256 only with a configured secret", async () => {
    const secret = "s".repeat(40);
    const hs = new SignJWT({ sub: "user-hs", aud: "authenticated", iss: ISSUER })
      .setExpirationTime("1h")
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(secret));
    const withSecret = new JwtVerifier(settings(jwks.url, { secret: fixed(secret) }), log);
    await expect(withSecret.verify(await hs)).resolves.toMatchObject({ subject: "user-hs" });
    await refused(await hs);
  });

  it("forgets the token it remembered first when full, and only that one", async () => {
    let secret = "a".repeat(40);
    const sign = (sub: string) =>
      new SignJWT({ sub, aud: "authenticated", iss: ISSUER })
        .setExpirationTime("1h")
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(secret));
    const [first, second, third] = await Promise.all(["u-1", "u-2", "u-3"].map(sign));
    const remembering2 = new JwtVerifier(
      settings(jwks.url, { secret: { current: () => secret } }),
      log,
      Date.now,
      2,
    );
    for (const t of [first, second, third]) await remembering2.verify(t as string);
    // Another secret now: only a token still remembered passes without a signature check.
    secret = "b".repeat(40);
    await expect(remembering2.verify(second as string)).resolves.toMatchObject({ subject: "u-2" });
    await expect(remembering2.verify(third as string)).resolves.toMatchObject({ subject: "u-3" });
    await expect(remembering2.verify(first as string)).rejects.toBeInstanceOf(InvalidJwtError);
  });
});

describe("a JWKS that is down at start", () => {
  it("answers unavailable until the key set is fetched, then serves", async () => {
    const jwks = new JwksServer();
    const key = await signingKey("ES256", "ec-late");
    jwks.keys = [key.publicJwk];
    jwks.up = false;
    await jwks.start();
    const verifier = new JwtVerifier(settings(jwks.url), log);
    verifier.start();
    try {
      await until(() => jwks.fetches > 0);
      await expect(verifier.verify(await token(key))).rejects.toBeInstanceOf(JwksUnavailableError);
      jwks.up = true;
      await until(() => jwks.fetches > 1, 5_000);
      await new Promise((r) => setTimeout(r, 50));
      await expect(verifier.verify(await token(key))).resolves.toMatchObject({ subject: "user-1" });
    } finally {
      verifier.stop();
      await jwks.stop();
    }
  });
});
