import type { IncomingHttpHeaders } from "node:http";
import type { InstanceRecord } from "../../shared/instance/record.js";
import { type TokenKeys, tokensMatch } from "../../shared/tokens/instance-token.js";
import { bearerOf } from "../identity/bearer.js";
import { isValidSseToken } from "../signin/sse-token.js";
import { type GatewayRequest, isEventStreamPath } from "./request.js";

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
