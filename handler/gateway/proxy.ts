import type * as http from "node:http";
import type { Socket } from "node:net";
import {
  type Duplex,
  PassThrough,
  type Readable,
  Transform,
  type TransformCallback,
} from "node:stream";
import type { Client, Dispatcher } from "undici";
import { FleetError } from "../errors/fleet-error.js";
import { clientResponseHeaders, type ProxyCall, upstreamRequestHeaders } from "./headers.js";
import { PodClients } from "./pod-clients.js";
import { tunnel } from "./tunnel.js";

export type { ProxyCall } from "./headers.js";

export interface ProxySettings {
  /** Wait for response headers (open streams have no idle limit). */
  timeoutMs: number;
  maxBodyBytes: number;
}

/** Methods a server must treat as safe to repeat (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
/** How a reused connection that its server closed fails when a request goes out on it. */
const CLOSED_UNDER_IT = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/**
 * Forwards HTTP exchanges and WebSocket upgrades to gptme-server pods, streaming both ways
 * (no buffering, backpressure kept), with what the fleet adds: the instance's token in place
 * of the client's credentials, a bound on the wait for response headers, a bound on request
 * bodies, redirects and cookies kept under the instance's prefix, and failures answered as
 * `onFailure` decides. Requests go out through undici's dispatcher (a tenth of node:http's
 * client cost per request, measured: docs/BENCHMARKS.md), on connections to each pod kept
 * alive and reused (a pod that closes them, as gptme-server does, costs a new one per
 * request); a body-less idempotent request whose connection is closed under it before any
 * answer is sent again once.
 */
export class InstanceProxy {
  private readonly clients: PodClients;

  constructor(private readonly settings: ProxySettings) {
    this.clients = new PodClients({ headersTimeoutMs: settings.timeoutMs });
  }

  /**
   * Forwards one exchange, until the client's answer closes. `onFailure` answers a failure
   * when no response header was sent yet (else the client's connection is cut).
   */
  web(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    call: ProxyCall,
    onFailure: (failure: FleetError) => void,
  ): void {
    const { clients } = this;
    const method = req.method ?? "GET";
    const { timeoutMs } = this.settings;
    const { headers: incoming } = req;
    const length = incoming["content-length"];
    const chunked = incoming["transfer-encoding"] !== undefined;
    const hasBody = chunked || (length !== undefined && length !== "0");
    const origin = originOf(call);
    const options: Dispatcher.DispatchOptions = {
      origin,
      method: method as Dispatcher.HttpMethod,
      path: call.upstreamPath,
      headers: upstreamRequestHeaders(incoming, call, clientOf(req.socket), false),
      // A body of unknown length is counted as it streams; one with a length was checked before.
      // Never the request itself: undici destroys a body it is done with, and for a node
      // IncomingMessage it first sets its `socket` to null, which the server's own listeners
      // (listhen's http-shutdown) then read when the answer finishes, and the process died.
      body: !hasBody
        ? null
        : chunked && length === undefined
          ? this.limited(req, fail)
          : req.pipe(new PassThrough()),
    };
    let client: Client = clients.take(origin);
    let controller: Dispatcher.DispatchController | undefined;
    let started = false;
    let failed = false;
    let over = false;
    let retried = false;
    function fail(failure: FleetError): void {
      if (failed) return;
      failed = true;
      over = true;
      void client.destroy();
      if (res.headersSent) res.destroy();
      else onFailure(failure);
    }
    res.once("close", () => {
      if (over) return;
      // The client went away: so does this exchange's connection to the pod.
      over = true;
      void client.destroy();
    });
    const resume = () => controller?.resume();
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        controller = started;
      },
      onResponseStart(_controller, status, headers, statusMessage) {
        // Informational answers (1xx) are the hop's own.
        if (status < 200 || over) return;
        started = true;
        res.writeHead(
          status,
          statusMessage,
          clientResponseHeaders(headers as http.IncomingHttpHeaders, call, req.httpVersion),
        );
      },
      onResponseData(_controller, chunk) {
        if (!started || over) return;
        // Each event of a stream goes on at once; a slower client holds the pod back.
        if (!res.write(chunk)) {
          controller?.pause();
          res.once("drain", resume);
        }
      },
      onResponseEnd() {
        if (over) return;
        over = true;
        res.end();
        clients.give(origin, client);
      },
      onResponseError(_controller, error: Error & { code?: string }) {
        if (over) return;
        const closedUnderIt =
          !started &&
          !retried &&
          !hasBody &&
          IDEMPOTENT.has(method) &&
          CLOSED_UNDER_IT.has(error.code ?? "");
        if (closedUnderIt) {
          // A reused connection its pod closed as the request went out: once more, on another.
          retried = true;
          void client.destroy();
          client = clients.take(origin);
          client.dispatch(options, handler);
          return;
        }
        fail(failureOf(error, timeoutMs));
      },
    };
    try {
      client.dispatch(options, handler);
    } catch (error) {
      // Refused before anything went out (a header undici will not send, say).
      fail(failureOf(error as Error, timeoutMs));
    }
  }

  /** Forwards a WebSocket upgrade; resolves with the pod's status once the tunnel closes. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, call: ProxyCall): Promise<number> {
    const headers = upstreamRequestHeaders(req.headers, call, clientOf(socket as Socket), true);
    return tunnel(req, socket, head, call, headers, this.settings.timeoutMs);
  }

  close(): void {
    this.clients.close();
  }

  private limited(req: http.IncomingMessage, fail: (failure: FleetError) => void): Readable {
    const max = this.settings.maxBodyBytes;
    let seen = 0;
    const limiter = new Transform({
      transform(chunk: Buffer, _encoding: string, done: TransformCallback) {
        seen += chunk.length;
        if (seen > max) done(new Error("request body too large"));
        else done(null, chunk);
      },
    });
    limiter.on("error", () => {
      req.unpipe(limiter);
      req.resume();
      fail(tooLarge(max));
    });
    return req.pipe(limiter);
  }
}

export function tooLarge(maxBytes: number): FleetError {
  return new FleetError("body_too_large", `The request body is larger than ${maxBytes} bytes.`);
}

/** What a failed exchange answers: the pod's silence is a timeout, anything else unreachable. */
function failureOf(error: Error & { code?: string }, timeoutMs: number): FleetError {
  if (error instanceof FleetError) return error;
  if (error.code === "UND_ERR_HEADERS_TIMEOUT") {
    return new FleetError(
      "instance_timeout",
      `The instance did not answer within ${timeoutMs / 1000}s.`,
    );
  }
  return new FleetError(
    "instance_unreachable",
    `The instance cannot be reached (${error.code ?? "connection failed"}); try again shortly.`,
  );
}

const clientOf = (socket: Socket) => ({
  address: socket.remoteAddress,
  encrypted: "encrypted" in socket && socket.encrypted === true,
});

const originOf = (call: ProxyCall) =>
  `http://${call.host.includes(":") ? `[${call.host}]` : call.host}:${call.port}`;
