import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { HeaderMap } from "../cors.js";
import type { ErrorAnswer } from "../errors/answer.js";
import { FleetError } from "../errors/fleet-error.js";

// Refusals at the gateway and the preview hosts, answered before anything reaches a pod; what
// each code answers is the one table of errors/answer.ts.

export const invalidToken = () =>
  new FleetError(
    "invalid_token",
    "A valid instance token is required: Authorization: Bearer <token>, or ?token=<token>.",
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
