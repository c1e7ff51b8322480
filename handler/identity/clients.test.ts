import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { type HandlerConfig, loadHandlerConfig } from "../../shared/config/load.js";
import { createLogger } from "../../shared/log.js";
import { answerOf, fleetErrorOf } from "../errors/answer.js";
import { ClientIdentities } from "./clients.js";
import { planClaimOf } from "./jwt.js";

const log = createLogger({ level: "silent", name: "test" }, process.stdout);
const ISSUER = "https://project.example.com/auth/v1";
const SECRET = "s".repeat(40);
const PLANS = `
default: free
plans:
  free: {template: gptme-client, maxInstancesPerClient: 1}
  pro: {template: gptme-client-pro}
`;

function configOf(env: Record<string, string>): HandlerConfig {
  const files: Record<string, string> = {
    "/plans.yaml": PLANS,
    "/keys": "free-key-1234\nplain-key-1234 pro\nlost-key-1234 gold\n",
    "/jwt-secret": SECRET,
  };
  return loadHandlerConfig({
    env: { PLANS_FILE: "/plans.yaml", ...env },
    readFile: (path) => files[path] ?? "",
  });
}

const hs256 = (claims: Record<string, unknown>) =>
  new SignJWT({ sub: "user-1", aud: "authenticated", iss: ISSUER, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));

async function refusal(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return answerOf(fleetErrorOf(error)).body;
  }
  throw new Error("not refused");
}

describe("a client's plan", () => {
  it("is the word after the key on its API_KEYS_FILE line, else the default", async () => {
    const identities = new ClientIdentities(
      configOf({ CLIENT_AUTH: "keys", API_KEYS_FILE: "/keys" }),
      log,
    );
    const of = (apiKey: string) => identities.clientOf({ apiKey, authorization: undefined });
    expect((await of("plain-key-1234")).plan).toMatchObject({
      name: "pro",
      template: "gptme-client-pro",
    });
    expect((await of("free-key-1234")).plan).toMatchObject({
      name: "free",
      maxInstancesPerClient: 1,
    });
  });

  it("is 403 unknown_plan, with a hint, when the plans in use have no such plan", async () => {
    const identities = new ClientIdentities(
      configOf({ CLIENT_AUTH: "keys", API_KEYS_FILE: "/keys" }),
      log,
    );
    const body = await refusal(
      identities.clientOf({ apiKey: "lost-key-1234", authorization: undefined }),
    );
    expect(body).toEqual({
      statusCode: 403,
      code: "unknown_plan",
      message: 'Your plan "gold" is not offered by this fleet, so no instance can be made for it.',
      error: 'Your plan "gold" is not offered by this fleet, so no instance can be made for it.',
      hint: expect.stringContaining("ask the fleet's operator"),
    });
    expect(JSON.stringify(body)).not.toContain("lost-key-1234");
  });

  it("is the JWT claim at JWT_PLAN_CLAIM, else the default", async () => {
    const identities = new ClientIdentities(
      configOf({
        CLIENT_AUTH: "jwt",
        JWT_ISSUER: ISSUER,
        JWT_SECRET_FILE: "/jwt-secret",
        JWT_PLAN_CLAIM: "app_metadata.plan",
      }),
      log,
    );
    const of = async (claims: Record<string, unknown>) =>
      identities.clientOf({ apiKey: undefined, authorization: `Bearer ${await hs256(claims)}` });
    expect((await of({ app_metadata: { plan: "pro" } })).plan.name).toBe("pro");
    expect((await of({ app_metadata: {} })).plan.name).toBe("free");
    expect((await of({})).plan.name).toBe("free");
    // Same person, same client, whatever the plan.
    expect((await of({ app_metadata: { plan: "pro" } })).clientId).toBe((await of({})).clientId);
    expect(await refusal(of({ app_metadata: { plan: "gold" } }))).toMatchObject({
      statusCode: 403,
      code: "unknown_plan",
    });
    // A claim that cannot be a name is not quoted back.
    const odd = await refusal(of({ app_metadata: { plan: { tier: "pro" } } }));
    expect(odd).toMatchObject({
      code: "unknown_plan",
      message: "Your plan is not offered by this fleet, so no instance can be made for it.",
    });
  });

  it("follows PLANS_FILE: a plan removed from it is refused from the next request", async () => {
    const config = configOf({ CLIENT_AUTH: "keys", API_KEYS_FILE: "/keys" });
    let plans = config.plans.current();
    const identities = new ClientIdentities({ ...config, plans: { current: () => plans } }, log);
    const of = () => identities.clientOf({ apiKey: "plain-key-1234", authorization: undefined });
    expect((await of()).plan.name).toBe("pro");
    plans = configOf({ CLIENT_AUTH: "open", PLANS_FILE: "" }).plans.current();
    expect(await refusal(of())).toMatchObject({ code: "unknown_plan" });
  });
});

describe("planClaimOf", () => {
  it("follows a dot path; absent or null is no plan; other values stay as written", () => {
    const payload = { app_metadata: { plan: "pro", n: 3, nested: { deep: "x" } }, top: "t" };
    expect(planClaimOf(payload, ["app_metadata", "plan"])).toBe("pro");
    expect(planClaimOf(payload, ["top"])).toBe("t");
    expect(planClaimOf(payload, ["app_metadata", "nested", "deep"])).toBe("x");
    expect(planClaimOf(payload, ["app_metadata", "missing"])).toBeUndefined();
    expect(planClaimOf(payload, ["top", "below"])).toBeUndefined();
    expect(planClaimOf({ p: null }, ["p"])).toBeUndefined();
    expect(planClaimOf(payload, ["app_metadata", "n"])).toBe("3");
    expect(planClaimOf(payload, ["app_metadata", "nested"])).toBe('{"deep":"x"}');
  });
});
