import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

// A platform's sign-in tokens, made in the test: keys, a JWKS endpoint on loopback, tokens.

export const ISSUER = "https://project.example.com/auth/v1";

/** A JWKS endpoint on loopback whose keys (and whether it answers) a test changes. */
export class JwksServer {
  keys: JWK[] = [];
  up = true;
  fetches = 0;
  private server: Server | undefined;
  url = "";

  async start(port = 0): Promise<void> {
    this.server = createServer((_req, res) => {
      this.fetches++;
      if (!this.up) return res.writeHead(503).end();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((r) => this.server?.listen(port, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()));
  }
}

export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function signingKey(
  alg: "RS256" | "ES256" | "EdDSA",
  kid: string,
): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

export function token(key: SigningKey, claims: JWTPayload = {}, header: object = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: "user-1",
    aud: "authenticated",
    iss: ISSUER,
    exp: now + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey);
}
