import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeManifest, codeObjectName, newCode } from "../../shared/signin-code.js";
import { ISSUER, JwksServer, signingKey, token } from "../../test/support/jwks.js";
import {
  adminKube,
  apiCalls,
  closedLoop,
  createNamespace,
  deleteNamespace,
  installTemplate,
  type Stats,
  say,
  startHandler,
  stats,
} from "./lib.js";

const KEY = "bench-signin-key-0001";
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { agent, method: init.method ?? "GET", headers: init.headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

export interface SigninBench {
  requests: number;
  login: Stats & { calls: number };
  exchange: Stats & { calls: number; writes: number };
  warmKey: Stats;
  warmJwt: Stats;
  /** The bare API calls each must make (same client library): a code's create; its read and delete. */
  bareCreate: Stats;
  bareDelete: Stats;
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
    await closedLoop(50, 1, login);
    codes.length = 0;
    let calls = await apiCalls(handler.url);
    const logins = await closedLoop(requests, 1, login);
    const loginCalls = ((await apiCalls(handler.url)) - calls) / requests;

    calls = await apiCalls(handler.url);
    const writes = await apiWrites(handler.url);
    const exchanges = await closedLoop(requests, 1, async (i) => {
      const res = await request(`${handler.url}/api/v1/operator/auth/exchange`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ code: codes[i] }),
      });
      if (res.status !== 200) throw new Error(`exchange: ${res.status} ${res.body}`);
    });
    const exchangeCalls = ((await apiCalls(handler.url)) - calls) / requests;
    const exchangeWrites = ((await apiWrites(handler.url)) - writes) / requests;

    const warm = (headers: Record<string, string>) => async () => {
      const res = await request(`${handler.url}/instances/sig`, { headers });
      if (res.status !== 200) throw new Error(`warm: ${res.status} ${res.body}`);
    };
    const keyLatencies: number[] = [];
    const jwtLatencies: number[] = [];
    await closedLoop(300, 1, warm(withKey));
    await closedLoop(300, 1, warm(withJwt));
    for (let round = 0; round < 4; round++) {
      const first = round % 2 === 0;
      for (const [sink, headers] of first
        ? ([
            [keyLatencies, withKey],
            [jwtLatencies, withJwt],
          ] as const)
        : ([
            [jwtLatencies, withJwt],
            [keyLatencies, withKey],
          ] as const)) {
        sink.push(...(await closedLoop(requests / 2, 1, warm(headers))).latencies);
      }
    }
    // Baselines: the one write each makes, straight to the API server.
    const kube = adminKube(namespace);
    const bare = Array.from({ length: requests }, () => newCode());
    const owner = {
      name: "bench",
      uid: "bench-uid",
      clientId: "0".repeat(32),
      instanceId: "bench",
    };
    const expires = new Date(Date.now() + 600_000);
    const bareCreate = await closedLoop(requests, 1, async (i) => {
      const manifest = codeManifest(bare[i] ?? "", owner, "login", expires);
      // No owner: the bench's stand-in instance does not exist.
      if (manifest.metadata) manifest.metadata.ownerReferences = undefined;
      await kube.codes.create(manifest);
    });
    const bareDelete = await closedLoop(requests, 1, async (i) => {
      const name = codeObjectName(bare[i] ?? "");
      const read = await kube.codes.get(name);
      if (!read || (await kube.codes.delete(name, { uid: read.objectUid })) !== "deleted")
        throw new Error("baseline: the code's object was not deleted");
    });
    kube.close();
    return {
      requests,
      bareCreate: stats(bareCreate.latencies),
      bareDelete: stats(bareDelete.latencies),
      login: { ...stats(logins.latencies), calls: loginCalls },
      exchange: { ...stats(exchanges.latencies), calls: exchangeCalls, writes: exchangeWrites },
      warmKey: stats(keyLatencies),
      warmJwt: stats(jwtLatencies),
    };
  } finally {
    await handler.stop();
    await jwks.stop();
    await deleteNamespace(namespace);
  }
}
