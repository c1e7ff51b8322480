import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "../../shared/log.js";
import { answerError } from "../errors/answer.js";
import type { ServingTarget } from "./decision.js";
import { CLIENT_CLOSED_REQUEST, type Exchanges } from "./exchanges.js";
import type { ProxyCall } from "./headers.js";
import type { InstanceProxy } from "./proxy.js";
import { rejectUpgrade } from "./refusal.js";

/** What a front (the instance gateway, the preview hosts) admitted an upgrade to. */
export interface AdmittedUpgrade {
  target: ServingTarget;
  call: ProxyCall;
}

export interface UpgradeParts {
  proxy: InstanceProxy;
  exchanges: Exchanges;
  log: Logger;
  /** The route its refusals are logged under. */
  route: string;
}

/**
 * A WebSocket upgrade, as both fronts carry it: admitted by the front's own checks, then piped
 * through to the pod and open as an exchange until it closes; refused with the front's answer
 * on the socket. Resolves once the socket is done, with the status to record and what was
 * admitted (if anything).
 */
export async function carryUpgrade<A extends AdmittedUpgrade>(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  admit: () => Promise<A>,
  { proxy, exchanges, log, route }: UpgradeParts,
): Promise<{ status: number; admitted?: A }> {
  socket.on("error", () => socket.destroy());
  let admitted: A | undefined;
  try {
    admitted = await admit();
    // The client went away while it was held: nothing to forward, nothing to keep open.
    if (socket.destroyed) return { status: CLIENT_CLOSED_REQUEST, admitted };
    socket.once("close", exchanges.begin(socket, admitted.target));
    return { status: await proxy.ws(req, socket, head, admitted.call), admitted };
  } catch (error) {
    const answer = answerError(error, log, route);
    rejectUpgrade(socket, answer);
    return { status: answer.status, admitted };
  }
}
