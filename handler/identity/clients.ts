import type { HandlerConfig, Plan } from "../../shared/config/load.js";
import { PLAN_NAME } from "../../shared/config/plans.js";
import { clientIdOf } from "../../shared/instance/names.js";
import type { Logger } from "../../shared/log.js";
import { FleetError } from "../errors/fleet-error.js";
import { clientOfKey, type NamedClient } from "./auth.js";
import { bearerOf } from "./bearer.js";
import { InvalidJwtError, JwksUnavailableError, JwtVerifier } from "./jwt.js";

/** What a request to a client route presents. */
export interface Credentials {
  /** From X-API-Key, or the path of `/api/v1/:apiKey/...`. */
  apiKey: string | null | undefined;
  authorization: string | null | undefined;
}

/** Who is asking, and the plan their instances get. */
export interface Client {
  clientId: string;
  plan: Plan;
}

/**
 * Who a client is, as CLIENT_AUTH says: an API key (checked against API_KEYS_FILE, or any
 * well-formed key when `open`), or a platform JWT (`Authorization: Bearer`). Both end as a
 * client id, a one-way hash: of the key, or of the token's issuer and subject, so a person
 * reaches the same instances with every new token.
 */
export class ClientIdentities {
  private readonly verifier: JwtVerifier | undefined;

  constructor(
    private readonly config: HandlerConfig,
    private readonly log: Logger,
    now?: () => number,
  ) {
    const jwt = config.clientAuth.jwt;
    this.verifier = jwt && new JwtVerifier(jwt, log, now);
  }

  /** Fetches the JWKS (in the background) when JWTs are accepted. */
  start(): void {
    this.verifier?.start();
  }

  stop(): void {
    this.verifier?.stop();
  }

  /**
   * The client and their plan: the one named with their key (API_KEYS_FILE) or in their
   * token (JWT_PLAN_CLAIM), else the default. A plan the plans in use do not have is 403
   * unknown_plan, on every client route: nothing is made for a plan nobody defined.
   */
  async clientOf(credentials: Credentials): Promise<Client> {
    const named = await this.namedClientOf(credentials);
    const plan = this.config.plans.current().get(named.plan);
    if (!plan) throw unknownPlan(named.plan ?? "");
    return { clientId: named.clientId, plan };
  }

  private async namedClientOf({ apiKey, authorization }: Credentials): Promise<NamedClient> {
    const { keys } = this.config.clientAuth;
    const bearer = this.verifier && !apiKey ? bearerOf(authorization ?? undefined) : undefined;
    if (bearer && this.verifier) return this.fromJwt(this.verifier, bearer);
    if (!keys && apiKey) {
      throw new FleetError(
        "invalid_credentials",
        "API keys are not accepted here: send Authorization: Bearer <your sign-in token>.",
      );
    }
    if (!keys) {
      throw new FleetError("missing_api_key", "Send Authorization: Bearer <your sign-in token>.");
    }
    return clientOfKey(apiKey, this.config);
  }

  private async fromJwt(verifier: JwtVerifier, token: string): Promise<NamedClient> {
    try {
      const { issuer, subject, plan } = await verifier.verify(token);
      // A newline cannot occur in an API key: a token's client never equals a key's.
      return { clientId: clientIdOf(`${issuer}\n${subject}`, this.config.clientIdSecret), plan };
    } catch (error) {
      if (error instanceof JwksUnavailableError) {
        throw new FleetError(
          "identity_unavailable",
          "Sign-in tokens cannot be checked yet (the issuer's keys are not available); try again shortly.",
        );
      }
      if (error instanceof InvalidJwtError) {
        this.log.info({ reason: error.message }, "refused a sign-in token");
        throw new FleetError(
          "invalid_credentials",
          "The sign-in token is invalid or expired; sign in again.",
        );
      }
      throw error;
    }
  }
}

/** 403 unknown_plan: the plan is named only when it could be one (a claim can hold anything). */
function unknownPlan(name: string) {
  const named = PLAN_NAME.test(name) ? `"${name}" ` : "";
  const message = `Your plan ${named}is not offered by this fleet, so no instance can be made for it.`;
  return new FleetError("unknown_plan", message, {
    error: message,
    hint: "Your account names a plan this fleet does not offer: ask the fleet's operator to add it or to move you to another plan.",
  });
}
