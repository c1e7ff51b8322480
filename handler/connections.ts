import type { RequestListener, Server } from "node:http";
import type { FleetHandler } from "./server.js";

/**
 * How long the handler keeps an idle client connection open. Longer than Traefik keeps its
 * idle connections to a backend (`idleConnTimeout`, 90 s by default): the side that sends
 * requests must be the one that gives up on an idle connection first, or it may send a
 * request on a connection the handler is closing at that very moment (Node's default, 5 s,
 * invited exactly that: a POST sent that way is not repeated, and answers 502).
 */
export const CLIENT_KEEP_ALIVE_MS = 100_000;
/** Answers under way when a drain begins get this long to finish before streams are cut. */
export const STREAM_GRACE_MS = 1_000;
/** How often connections that went idle during a drain are closed. */
const IDLE_SWEEP_MS = 100;

/** The handler's keep-alive setting (its request and header timeouts are Node's). */
export function keepConnections(server: Server): void {
  server.keepAliveTimeout = CLIENT_KEEP_ALIVE_MS;
}

/**
 * Leaves `handle` as the server's only request listener. listhen adds http-shutdown, which
 * listens to every request and to the end of its answer for a shutdown of its own that the
 * handler never calls (it drains with Node's own means: `drain`, below); on the gateway that
 * is work on every proxied request, for nothing.
 */
export function onlyRequestListener(server: Server, handle: RequestListener): void {
  for (const listener of server.listeners("request")) {
    if (listener !== handle) server.off("request", listener as RequestListener);
  }
}

/**
 * Drains the server before the process exits: it stops accepting connections; every answer
 * not yet begun says `Connection: close` (so no client sends another request on it, and none
 * is cut under a request); idle connections are closed; answers in flight finish; event
 * streams and WebSockets, which never end by themselves, are cut after a short grace (their
 * clients reconnect to another replica). Resolves true when every connection has closed,
 * false when `boundMs` passed first (then everything left is cut).
 */
export async function drain(
  server: Server,
  fleet: FleetHandler,
  boundMs: number,
): Promise<boolean> {
  fleet.drain();
  const closed = new Promise<true>((resolve) => server.close(() => resolve(true)));
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const grace = setTimeout(() => fleet.cutStreams(), STREAM_GRACE_MS);
  let bound: NodeJS.Timeout | undefined;
  const drained = await Promise.race([
    closed,
    new Promise<false>((resolve) => {
      bound = setTimeout(() => resolve(false), boundMs);
    }),
  ]);
  clearInterval(sweep);
  clearTimeout(grace);
  clearTimeout(bound);
  if (!drained) {
    fleet.gateway.cutOpenExchanges();
    fleet.previews?.cutOpenExchanges();
    server.closeAllConnections();
  }
  return drained;
}
