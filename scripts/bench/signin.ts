import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JwtVerifier } from "../../handler/identity/jwt.js";
import { createLogger } from "../../shared/log.js";
import { codeManifest, codeObjectName, newCode } from "../../shared/tokens/signin-code.js";
import { ISSUER, JwksServer, signingKey, token } from "../../test/support/jwks.js";
import {
  adminKube,
  answerHealth,
  apiCalls,
  createNamespace,
  deleteNamespace,
  installTemplate,
  httpRequest as request,
  say,
  startHandler,
} from "./lib.js";
import { closedLoop, type Stats, stats } from "./stats.js";

const KEY = "bench-signin-key-0001";
export interface SigninBench {
  requests: number;
  login: Stats & { calls: number };
  exchange: Stats & { calls: number; writes: number };
  warmKey: Stats;
  warmJwt: Stats;
  /** The bare API calls each must make (same client library): a code's create; its read and delete. */
  bareCreate: Stats;
  bareDelete: Stats;
  /** The verifier alone, in this process: a token's first verification, and a remembered one. */
  verifyFirst: Stats;
  verifyRemembered: Stats;
}

/** JwtVerifier.verify on its own (µs-level figures, free of the shared machine's HTTP noise). */
async function verifierCost(
  jwksUrl: string,
  key: Awaited<ReturnType<typeof signingKey>>,
): Promise<{ first: Stats; remembered: Stats }> {
  const verifier = new JwtVerifier(
    {
      jwksUrl,
      issuer: ISSUER,
      audience: "authenticated",
      refreshMs: 300_000,
      planClaim: undefined,
      secret: undefined,
    },
    createLogger({ level: "silent", name: "bench" }, process.stderr),
  );
  verifier.start();
  const tokens = await Promise.all(
    Array.from({ length: 500 }, (_, i) => token(key, { jti: String(i) })),
  );
  for (let i = 0; i < 50; i++) {
    try {
      await verifier.verify(tokens[0] ?? "");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const first = (
    await closedLoop(tokens.length - 1, 1, async (i) => {
      await verifier.verify(tokens[i + 1] ?? "");
    })
  ).latencies;
  const remembered = (
    await closedLoop(20_000, 1, async (i) => {
      await verifier.verify(tokens[i % tokens.length] ?? "");
    })
  ).latencies;
  verifier.stop();
  return { first: stats(first), remembered: stats(remembered) };
}

/** Kubernetes writes (create, patch, delete) from the handler's own /metrics. */
async function apiWrites(url: string): Promise<number> {
  const text = (await request(`${url}/metrics`)).body;
  let total = 0;
  for (const line of text.split("\n")) {
    if (/^fleet_kubernetes_requests_total\{verb="(create|patch|delete)"/.test(line))
      total += Number(line.split(" ").at(-1));
  }
  return total;
}

/**
 * Sign-in against one handler process (CLIENT_AUTH=keys,jwt, a JWKS on loopback): a login
 * code minted for a ready instance, the exchange of such codes, each one at a time with its
 * API calls; and the warm GET /instances/:id with a JWT against the same with an API key,
 * alternated in rounds in the same run.
 */
export async function signinBench(requests: number): Promise<SigninBench> {
  const namespace = await createNamespace("bench-signin");
  await installTemplate(namespace);
  // KWOK pods run no containers: something answers the instance's health check, as its
  // gptme-server would (an instance is ready once it answers).
  const health = answerHealth(namespace);
  const jwks = new JwksServer();
  const key = await signingKey("ES256", "bench-1");
  jwks.keys = [key.publicJwk];
  await jwks.start();
  const dir = mkdtempSync(join(tmpdir(), "bench-signin-"));
  writeFileSync(join(dir, "keys"), `${KEY}\n`);
  const handler = await startHandler(namespace, {
    CLIENT_AUTH: "keys,jwt",
    API_KEYS_FILE: join(dir, "keys"),
    JWT_JWKS_URL: jwks.url,
    JWT_ISSUER: ISSUER,
    PUBLIC_URL: "https://fleet.example.com",
    LOGIN_CODE_TTL: "10m",
  });
  const jwt = await token(key);
  const withKey = { "x-api-key": KEY };
  const withJwt = { authorization: `Bearer ${jwt}` };
  try {
    for (const [headers, id] of [
      [withKey, "sig"],
      [withJwt, "sig"],
    ] as const) {
      const res = await request(`${handler.url}/instances/${id}?wait=30`, { headers });
      if (res.status !== 200) throw new Error(`warm-up: ${res.status} ${res.body}`);
    }
    say(`signin: ${requests} logins, ${requests} exchanges, ${requests * 2} warm GETs`);
    const codes: string[] = [];
    const login = async () => {
      const res = await request(`${handler.url}/instances/sig/login`, {
        method: "POST",
        headers: withKey,
      });
      if (res.status !== 200) throw new Error(`login: ${res.status} ${res.body}`);
      codes.push(JSON.parse(res.body).login.code);
    };
    const exchange = async () => {
      const res = await request(`${handler.url}/api/v1/operator/auth/exchange`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ code: codes.shift() }),
      });
      if (res.status !== 200) throw new Error(`exchange: ${res.status} ${res.body}`);
    };
    // Baselines: the API calls each cannot do without, straight to the API server with the
    // same client library: a code's create; its read and its delete with a uid precondition.
    const kube = adminKube(namespace);
    const bare: string[] = [];
    const owner = {
      name: "bench",
      uid: "bench-uid",
      clientId: "0".repeat(32),
      instanceId: "bench",
    };
    const expires = new Date(Date.now() + 3_600_000);
    const bareCreate = async () => {
      const code = newCode();
      const manifest = codeManifest(code, owner, "login", expires);
      // No owner: the bench's stand-in instance does not exist.
      if (manifest.metadata) manifest.metadata.ownerReferences = undefined;
      await kube.codes.create(manifest);
      bare.push(code);
    };
    const bareConsume = async () => {
      const name = codeObjectName(bare.shift() ?? "");
      const read = await kube.codes.get(name);
      if (!read || (await kube.codes.delete(name, { uid: read.objectUid })) !== "deleted")
        throw new Error("baseline: the code's object was not deleted");
    };
    const warm = (headers: Record<string, string>) => async () => {
      const res = await request(`${handler.url}/instances/sig`, { headers });
      if (res.status !== 200) throw new Error(`warm: ${res.status} ${res.body}`);
    };
    for (const warmUp of [login, exchange, bareCreate, bareConsume, warm(withKey), warm(withJwt)])
      await closedLoop(50, 1, warmUp);

    // Each path and its baseline take turns in rounds, so drift on this shared machine falls
    // on both alike; the handler's API calls are counted around its own turns only.
    const ROUNDS = 4;
    const per = requests / ROUNDS;
    const lat = {
      login: [] as number[],
      exchange: [] as number[],
      bareCreate: [] as number[],
      bareConsume: [] as number[],
      key: [] as number[],
      jwt: [] as number[],
    };
    let loginCalls = 0;
    let exchangeCalls = 0;
    let exchangeWrites = 0;
    const counted = async (run: () => Promise<number[]>) => {
      const [calls, writes] = [await apiCalls(handler.url), await apiWrites(handler.url)];
      const latencies = await run();
      return {
        latencies,
        calls: (await apiCalls(handler.url)) - calls,
        writes: (await apiWrites(handler.url)) - writes,
      };
    };
    const loop = async (worker: () => Promise<void>) =>
      (await closedLoop(per, 1, worker)).latencies;
    for (let round = 0; round < ROUNDS; round++) {
      const logins = await counted(() => loop(login));
      lat.login.push(...logins.latencies);
      loginCalls += logins.calls;
      lat.bareCreate.push(...(await loop(bareCreate)));
      const exchanges = await counted(() => loop(exchange));
      lat.exchange.push(...exchanges.latencies);
      exchangeCalls += exchanges.calls;
      exchangeWrites += exchanges.writes;
      lat.bareConsume.push(...(await loop(bareConsume)));
      const [first, second] = round % 2 ? (["jwt", "key"] as const) : (["key", "jwt"] as const);
      lat[first].push(...(await loop(warm(first === "key" ? withKey : withJwt))));
      lat[second].push(...(await loop(warm(second === "key" ? withKey : withJwt))));
    }
    kube.close();
    const verify = await verifierCost(jwks.url, key);
    return {
      requests,
      verifyFirst: verify.first,
      verifyRemembered: verify.remembered,
      login: { ...stats(lat.login), calls: loginCalls / requests },
      exchange: {
        ...stats(lat.exchange),
        calls: exchangeCalls / requests,
        writes: exchangeWrites / requests,
      },
      warmKey: stats(lat.key),
      warmJwt: stats(lat.jwt),
      bareCreate: stats(lat.bareCreate),
      bareDelete: stats(lat.bareConsume),
    };
  } finally {
    await handler.stop();
    await jwks.stop();
    await health.stop();
    await deleteNamespace(namespace);
  }
}
