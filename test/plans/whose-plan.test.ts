import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { createLogger } from "../../shared/log.js";
import {
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { ISSUER, JwksServer, type SigningKey, signingKey, token } from "../support/jwks.js";

// Whose plan is whose (API_KEYS_FILE's word after a key, JWT_PLAN_CLAIM), and what a plan
// that does not exist gets: 403 unknown_plan, nothing created.

const PLANS = `
default: free
plans:
  free: {template: gptme-client}
  pro: {template: gptme-client}
`;

describe("whose plan, on the real control plane", () => {
  let namespace: string;
  let handler: TestHandler;
  let dir: string;
  const jwks = new JwksServer();
  let key: SigningKey;

  beforeAll(async () => {
    namespace = await createTestNamespace("plans-whose");
    await installTemplate(namespace);
    key = await signingKey("RS256", "rsa-1");
    jwks.keys = [key.publicJwk];
    await jwks.start();
    dir = mkdtempSync(join(tmpdir(), "plans-whose-"));
    writeFileSync(join(dir, "plans.yaml"), PLANS);
    writeFileSync(
      join(dir, "keys"),
      "free-key-AAAAAAAA\npro-key-AAAAAAAAA pro\ngold-key-AAAAAAAA gold\n",
    );
    handler = startHandler(namespace, {
      CLIENT_AUTH: "keys,jwt",
      API_KEYS_FILE: join(dir, "keys"),
      PLANS_FILE: join(dir, "plans.yaml"),
      CREDENTIALS_RELOAD: "1s",
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_PLAN_CLAIM: "app_metadata.plan",
    });
    const log = createLogger({ level: "info", name: "fleet-handler" }, handler.logs);
    for (const file of handler.config.credentialFiles) {
      file.watch(log, handler.metrics.credentialsObserver);
    }
    await eventually(async () => (jwks.fetches > 0 ? true : undefined), "the JWKS fetch");
  });

  afterAll(async () => {
    handler?.close();
    await jwks.stop();
    await deleteTestNamespace(namespace);
  });

  it("refuses a key whose plan is not in PLANS_FILE with 403 unknown_plan and a hint, creating nothing", async () => {
    for (const path of ["/instances/a?wait=0", "/instances/a/login?wait=0"]) {
      const res = await handler.request(path, {
        apiKey: "gold-key-AAAAAAAA",
        method: path.endsWith("login?wait=0") ? "POST" : "GET",
      });
      expect(res.status).toBe(403);
      const body = await res.json();
      expect(body).toMatchObject({ statusCode: 403, code: "unknown_plan" });
      expect(body.message).toContain('"gold"');
      expect(body.hint).toEqual(expect.any(String));
      expect(JSON.stringify(body)).not.toContain("gold-key-AAAAAAAA");
    }
    expect(await clientPodNames(namespace)).toEqual([]);
    expect(handler.logs.lines.join("\n")).not.toContain("gold-key-AAAAAAAA");
  });

  it("refuses a token whose plan claim names no plan, and admits one whose does", async () => {
    const gold = await token(key, { app_metadata: { plan: "gold" } });
    const refused = await handler.request("/instances/jwt?wait=0", {
      headers: { authorization: `Bearer ${gold}` },
    });
    expect(refused.status).toBe(403);
    expect((await refused.json()).code).toBe("unknown_plan");
    expect(await clientPodNames(namespace)).toEqual([]);
    const pro = await token(key, { app_metadata: { plan: "pro" } });
    const admitted = await handler.request("/instances/jwt?wait=0", {
      headers: { authorization: `Bearer ${pro}` },
    });
    expect(admitted.status).toBe(202);
    expect(await clientPodNames(namespace)).toEqual([
      instanceNameOf(clientIdOf(`${ISSUER}\nuser-1`), "jwt"),
    ]);
  });

  it("admits the key once PLANS_FILE gains its plan, without a restart", async () => {
    const next = join(dir, "plans.next");
    writeFileSync(next, `${PLANS}  gold: {template: gptme-client}\n`);
    renameSync(next, join(dir, "plans.yaml"));
    const res = await eventually(
      async () => {
        const r = await handler.request("/instances/a?wait=0", { apiKey: "gold-key-AAAAAAAA" });
        return r.status === 403 ? undefined : r;
      },
      "the new plan to take effect",
      10_000,
    );
    expect(res.status).toBe(202);
    expect((await clientPodNames(namespace)).length).toBe(2);
  });
});
