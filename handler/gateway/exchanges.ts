import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { ProxiedRequestLog, RequestRecord } from "../request-log.js";
import type { GatewayActivity } from "./activity.js";
import type { Target } from "./target.js";

type Exchange = ServerResponse | Duplex;

/**
 * A front's open exchanges (proxied requests, event streams, WebSockets): each counts as
 * activity for as long as it is open, and can be cut when the process shuts down (streams
 * never end by themselves).
 */
export class Exchanges {
  private readonly open = new Set<Exchange>();

  constructor(private readonly activity: GatewayActivity) {}

  /** Exchanges open now. */
  get count(): number {
    return this.open.size;
  }

  /** An admitted exchange is open; the function returned closes it (call it once it is). */
  begin(exchange: Exchange, target: Target): () => void {
    this.activity.noteRequest(target);
    const close = this.activity.open(target.podName);
    this.open.add(exchange);
    return () => {
      close();
      this.open.delete(exchange);
    };
  }

  /**
   * Cuts what will not end soon by itself: WebSockets, and answers already under way (event
   * streams). Answers still awaited from a pod are left to finish. Clients reconnect, through
   * another replica.
   */
  cutStreams(): void {
    for (const exchange of this.open) {
      if (!("headersSent" in exchange) || exchange.headersSent) exchange.destroy();
    }
  }

  /** Cuts every open exchange. */
  cutAll(): void {
    for (const exchange of this.open) exchange.destroy();
  }
}

/** What a front learns of a request as it goes, for its log line or summary. */
export interface RequestFacts {
  instance: string | undefined;
  clientId: string | undefined;
  credential: RequestRecord["credential"];
  /** Closes its exchange, once one was opened. */
  close: (() => void) | undefined;
}

/**
 * Records a proxied request once its answer is over (sent, cut or abandoned), with what the
 * front filled in meanwhile, and closes its exchange: one listener per request.
 */
export function recordWhenClosed(
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  requests: ProxiedRequestLog,
  instance: string | undefined,
): RequestFacts {
  const started = performance.now();
  const facts: RequestFacts = {
    instance,
    clientId: undefined,
    credential: undefined,
    close: undefined,
  };
  res.once("close", () => {
    facts.close?.();
    requests.record({
      method: req.method ?? "GET",
      route,
      status: res.statusCode,
      seconds: (performance.now() - started) / 1000,
      instance: facts.instance,
      clientId: facts.clientId,
      credential: facts.credential,
    });
  });
  return facts;
}
