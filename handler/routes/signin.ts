import type { H3, H3Event } from "h3";
import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import type { Kube } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";
import type { ClientIdentities } from "../identity/clients.js";
import { type InstanceBody, instanceUidOf } from "../instances/body.js";
import type { Instances } from "../instances/instances.js";
import type { Metrics } from "../metrics.js";
import type { SigninCodes } from "../signin/code-store.js";
import { type ExchangeAnswer, exchangeCode } from "../signin/exchange.js";
import { headerKey, pathKey } from "./client-request.js";
import { getInstance } from "./instances.js";

export interface SigninDeps {
  config: HandlerConfig;
  kube: Kube;
  instances: Instances;
  identities: ClientIdentities;
  codes: SigninCodes;
  keyring: TokenKeyring;
  metrics: Metrics;
  now: () => Date;
}

/** The largest exchange body read: `{"code": "<43 characters>"}` with room to spare. */
const MAX_EXCHANGE_BODY = 4_096;

const HINT = "The sign-in link has expired or was already used. Sign in again.";

/** Sign-in the way gptme's own clients do it: login codes, and the operator exchange. */
export function signinRoutes(app: H3, deps: SigninDeps): void {
  app.post("/instances/:instanceId/login", (event) => login(event, deps, headerKey(event)));
  app.post("/api/v1/:apiKey/instances/:instanceId/login", (event) =>
    login(event, deps, pathKey(event)),
  );
  app.post("/api/v1/operator/auth/exchange", (event) => exchange(event, deps));
}

/** The instance, as GET /instances/:id answers it, plus a one-time login code for it. */
async function login(
  event: H3Event,
  deps: SigninDeps,
  apiKey: string | null | undefined,
): Promise<InstanceBody & { login: { code: string; expiresAt: string; url: string | null } }> {
  const { config, instances, identities, codes } = deps;
  const body = await getInstance(event, config, instances, identities, apiKey);
  const uid = instanceUidOf(body);
  if (!uid) throw new Error("an instance body without its ClientPod's uid");
  const minted = await codes.mint(
    { name: body.name, uid, clientId: event.context.clientId ?? "", instanceId: body.instanceId },
    "login",
    config.signin.loginCodeTtlMs,
  );
  // A code is a credential: no cache may keep the answer.
  event.res.headers.set("cache-control", "no-store");
  const webUi = config.signin.webUiUrl;
  return {
    ...body,
    login: {
      code: minted.code,
      expiresAt: minted.expiresAt.toISOString(),
      url: webUi === undefined ? null : `${webUi}#code=${minted.code}`,
    },
  };
}

async function exchange(event: H3Event, deps: SigninDeps): Promise<ExchangeAnswer> {
  const fail = (error: FleetError) => {
    deps.metrics.signinFailures.inc({ code: error.code });
    return error;
  };
  if (deps.config.gateway.publicUrl === undefined) {
    throw fail(
      new FleetError(
        "public_url_missing",
        "The fleet cannot name the instance's URL: set PUBLIC_URL (the gateway's public base URL).",
        { error: "The fleet is misconfigured: PUBLIC_URL is not set." },
      ),
    );
  }
  const code = await codeOf(event).catch((error) => {
    throw fail(error);
  });
  event.res.headers.set("cache-control", "no-store");
  const answer = await exchangeCode(code, deps);
  if (!answer) {
    throw fail(
      new FleetError("invalid_code", "The sign-in code is unknown, used or expired.", {
        error: "Invalid or expired sign-in code",
        hint: HINT,
      }),
    );
  }
  return answer;
}

/** The code of an exchange body: `{"code": "..."}`, else 400 invalid_body. */
async function codeOf(event: H3Event): Promise<string> {
  const invalid = new FleetError("invalid_body", 'Send JSON: {"code": "<the sign-in code>"}.', {
    error: 'The request must be JSON: {"code": "..."}',
  });
  const length = Number(event.req.headers.get("content-length") ?? 0);
  if (length > MAX_EXCHANGE_BODY) throw invalid;
  const text = await event.req.text();
  if (text.length > MAX_EXCHANGE_BODY) throw invalid;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalid;
  }
  const code = (body as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || code === "") throw invalid;
  return code;
}
