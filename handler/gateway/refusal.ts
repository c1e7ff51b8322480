import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { HeaderMap } from "../cors.js";
import { answerOf, type ErrorAnswer } from "../errors/answer.js";
import { type ErrorCode, FleetError } from "../errors/fleet-error.js";
import type { Target } from "./targets.js";

/** What an admission decided beyond its answer: whether to look again, hold or heal. */
export interface RefusalDetails {
  /** Decided on a cached lookup of the instance: a fresh read may decide otherwise. */
  cached?: boolean;
  /** The instance's own Pod, still starting: the request may be held until it serves. */
  starting?: Target;
  /** A valid token, but the instance's Pod is gone, ended or stale: start it again. */
  missing?: boolean;
}

/** A refusal at the gateway or a preview host, answered before anything reaches a pod. */
export class Refusal extends FleetError {
  override name = "Refusal";
  constructor(
    code: ErrorCode,
    message: string,
    readonly details: RefusalDetails = {},
  ) {
    super(code, message);
  }
}

export const invalidToken = (cached = false) =>
  new Refusal(
    "invalid_token",
    "A valid instance token is required: Authorization: Bearer <token>, or ?token=<token>.",
    { cached },
  );

/** Sends an error answer (its CORS headers added), or cuts the exchange if it has begun. */
export function sendAnswer(res: ServerResponse, answer: ErrorAnswer, cors: HeaderMap = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    ...cors,
    ...answer.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Sends a refusal decided here. */
export const sendRefusal = (res: ServerResponse, refusal: FleetError, cors: HeaderMap = {}) =>
  sendAnswer(res, answerOf(refusal), cors);

/** Answers a refused upgrade on the raw socket, then closes it. */
export function rejectUpgrade(socket: Duplex, answer: ErrorAnswer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(answer.body);
  const headers = Object.entries({
    ...answer.headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    connection: "close",
  })
    .map(([name, value]) => `${name}: ${value}`)
    .join("\r\n");
  socket.end(`HTTP/1.1 ${answer.status} ${answer.body.code}\r\n${headers}\r\n\r\n${body}`);
}
