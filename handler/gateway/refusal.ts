import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { HeaderMap } from "../cors.js";
import type { ErrorBody, ErrorCode } from "../errors.js";
import type { ProxyFailure } from "./proxy.js";
import type { Target } from "./targets.js";

/** A refusal, answered in the API's JSON shape before anything reaches a pod. */
export class Refusal {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly message: string,
    readonly headers: HeaderMap = {},
    /** Decided on a cached lookup of the instance. */
    readonly cached = false,
    /** The instance's own Pod, still starting: the request may be held until it serves. */
    readonly starting?: Target,
    /** A valid token, but the instance's Pod is gone, ended or stale: start it again. */
    readonly missing = false,
  ) {}
}

export const invalidToken = (cached = false) =>
  new Refusal(
    401,
    "invalid_token",
    "A valid instance token is required: Authorization: Bearer <token>, or ?token=<token>.",
    {},
    cached,
  );

export function withHeaders(refusal: Refusal, headers: HeaderMap): Refusal {
  return new Refusal(refusal.status, refusal.code, refusal.message, {
    ...refusal.headers,
    ...headers,
  });
}

export function failureRefusal(failure: ProxyFailure, cors: HeaderMap): Refusal {
  return new Refusal(failure.status, failure.code, failure.message, cors);
}

function bodyOf(refusal: Refusal): string {
  const body: ErrorBody = {
    statusCode: refusal.status,
    code: refusal.code,
    message: refusal.message,
  };
  return JSON.stringify(body);
}

export function sendRefusal(res: ServerResponse, refusal: Refusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = bodyOf(refusal);
  res.writeHead(refusal.status, {
    ...refusal.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Answers a refused upgrade on the raw socket, then closes it. */
export function rejectUpgrade(socket: Duplex, refusal: Refusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = bodyOf(refusal);
  const headers = Object.entries({
    ...refusal.headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    connection: "close",
  })
    .map(([name, value]) => `${name}: ${value}`)
    .join("\r\n");
  socket.end(`HTTP/1.1 ${refusal.status} ${refusal.code}\r\n${headers}\r\n\r\n${body}`);
}
