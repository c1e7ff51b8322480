import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { InstanceRecord } from "../../shared/instance/record.js";
import { type TokenKeys, tokensMatch } from "../../shared/tokens/instance-token.js";
import { FleetError } from "../errors/fleet-error.js";
import { bearerOf } from "../identity/bearer.js";
import { isValidSseToken } from "../signin/sse-token.js";
import type { Front } from "./admission.js";
import { invalidToken } from "./refusal.js";
import { type GatewayRequest, isEventStreamPath } from "./request.js";
import { type Target, tokenFor } from "./target.js";

/** Which kind of credential a gateway request was admitted with (logged and counted). */
export type Credential = "instance-token" | "sse-token";

/** A token as a gateway request presented it. */
export interface PresentedToken {
  token: string;
  /** Presented where an event-stream token counts. */
  sseAllowed: boolean;
}

/**
 * The token a gateway request presents: `Authorization: Bearer`, else `?token=`. An
 * event-stream token counts only where gptme's web UI sends one: `?token=` of a GET (not an
 * upgrade) of a conversation's event stream.
 */
export function presentedToken(
  method: string | undefined,
  headers: IncomingHttpHeaders,
  parsed: GatewayRequest,
): PresentedToken | undefined {
  const bearer = bearerOf(headers.authorization);
  const token = bearer ?? parsed.queryToken;
  if (!token) return undefined;
  const sseAllowed =
    bearer === undefined &&
    method === "GET" &&
    !headers.upgrade &&
    isEventStreamPath(parsed.upstreamPath);
  return { token, sseAllowed };
}

/** Which credential of this instance a presented token is; undefined: none. */
export function credentialOf(
  presented: PresentedToken,
  expected: string,
  record: InstanceRecord,
  keys: TokenKeys,
  now: Date,
  sseTokenTtlMs: number,
): Credential | undefined {
  if (tokensMatch(presented.token, expected)) return "instance-token";
  const key = record.tokenKeyId === undefined ? undefined : keys.byId.get(record.tokenKeyId);
  if (
    presented.sseAllowed &&
    key &&
    isValidSseToken(presented.token, key, record.uid, now, sseTokenTtlMs)
  ) {
    return "sse-token";
  }
  return undefined;
}

/** The gateway's answer when an admitted token's instance does not serve (after any hold and heal). */
const notServing = () =>
  new FleetError(
    "instance_starting",
    "The instance is not ready yet; GET /instances/<id> starts it if needed, then try again.",
  );

/**
 * How the gateway admits a request: the token it presents must be the instance's (or, where
 * allowed, one of its event-stream tokens); anything else, and an unknown instance, is the
 * same 401. A missing Pod is started again.
 */
export class GatewayCredential implements Front<Credential> {
  readonly heals = true;
  readonly unknown = invalidToken;
  readonly notServing = notServing;

  constructor(
    private readonly presented: PresentedToken,
    private readonly keys: TokenKeys,
    private readonly now: () => Date,
    private readonly sseTokenTtlMs: number,
  ) {}

  check(target: Target): Credential | FleetError {
    const { token, expected } = tokenFor(target, this.keys);
    if (token === undefined || expected === undefined) return invalidToken();
    // The common case first: the instance token, compared in constant time, the clock unread.
    const given = Buffer.from(this.presented.token);
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      return "instance-token";
    }
    const { presented, keys, sseTokenTtlMs } = this;
    const kind = credentialOf(presented, token, target.record, keys, this.now(), sseTokenTtlMs);
    return kind ?? invalidToken();
  }
}
