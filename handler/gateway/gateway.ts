import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { HandlerConfig } from "../../shared/config/load.js";
import type { Logger } from "../../shared/log.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { corsHeaders, type HeaderMap, isPreflight, preflightHeaders } from "../cors.js";
import { answerError } from "../errors/answer.js";
import type { Metrics } from "../metrics.js";
import type { ProxiedRequestLog } from "../request-log.js";
import type { GatewayActivity } from "./activity.js";
import type { Admission } from "./admission.js";
import { type Credential, GatewayCredential, presentedToken } from "./credentials.js";
import type { ServingTarget } from "./decision.js";
import { Exchanges, recordWhenClosed } from "./exchanges.js";
import type { KeysAtHand } from "./keys.js";
import { type InstanceProxy, type ProxyCall, tooLarge } from "./proxy.js";
import { invalidToken, sendAnswer } from "./refusal.js";
import { GATEWAY_ROUTE, type GatewayRequest, parseGatewayUrl } from "./request.js";
import { tokenFor } from "./target.js";
import type { Targets } from "./targets.js";
import { carryUpgrade } from "./upgrade.js";

/** What the instance gateway and the preview hosts share: one admission, one proxy, one activity. */
export interface GatewayParts {
  config: HandlerConfig;
  keys: KeysAtHand;
  admission: Admission;
  proxy: InstanceProxy;
  activity: GatewayActivity;
  /** The proxied routes' request log (lines and summaries) and request metrics. */
  requests: ProxiedRequestLog;
  targets: Targets;
  log: Logger;
  metrics: Metrics;
  now: () => Date;
}

/** A request admitted: to which instance, with which credential, and what its pod receives. */
interface Admitted {
  target: ServingTarget;
  credential: Credential;
  call: ProxyCall;
}

/**
 * The instance gateway: `/api/v1/instances/<name>/...` carries a client's traffic to its
 * instance's gptme-server. Every exchange is authenticated with the instance's own token
 * (the same 401 whether or not the instance exists), reaches only its own serving Pod (a
 * starting one is waited for, a missing one started again), never creates an instance, and
 * counts as activity for as long as it stays open. This front reads the token and the path;
 * the admission decides. A request for a known serving instance is admitted without waiting
 * for anything (no promise, no read).
 */
export class Gateway {
  readonly exchanges: Exchanges;
  /** The CORS headers of each allowed origin (and of any other), worked out once. */
  private readonly cors = new Map<string | undefined, HeaderMap>();

  constructor(private readonly parts: GatewayParts) {
    this.exchanges = new Exchanges(parts.activity);
  }

  /** Exchanges in flight (streams included). */
  get openExchanges(): number {
    return this.exchanges.count;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const { config, log, requests } = this.parts;
    const parsed = parseGatewayUrl(req.url ?? "");
    const facts = recordWhenClosed(req, res, GATEWAY_ROUTE, requests, parsed?.name);
    const origin = req.headers.origin;
    if (isPreflight(req.method, req.headers as HeaderMap)) {
      res.writeHead(204, preflightHeaders(origin, config.gateway.corsOrigins)).end();
      return;
    }
    const cors = this.corsOf(origin);
    const refuse = (error: unknown) =>
      sendAnswer(res, answerError(error, log, GATEWAY_ROUTE), cors);
    const forward = (admitted: Admitted) => {
      facts.clientId = admitted.target.record.clientId;
      facts.credential = admitted.credential;
      // The client went away while it was held: nothing to forward, nothing to keep open
      // (an exchange begun now would never close, and count as activity for ever).
      if (facts.closed) return;
      const max = config.gateway.proxyMaxBodyBytes;
      if (Number(req.headers["content-length"] ?? 0) > max) throw tooLarge(max);
      facts.close = this.exchanges.begin(res, admitted.target);
      this.parts.proxy.web(req, res, admitted.call, (failure) => {
        if (failure.code === "instance_unreachable")
          this.parts.targets.forget(admitted.target.podName);
        refuse(failure);
      });
    };
    try {
      const admitted = this.admit(req, parsed, cors);
      if (admitted instanceof Promise) {
        admitted.then(forward).catch(refuse);
      } else forward(admitted);
    } catch (error) {
      refuse(error);
    }
  }

  /** A WebSocket upgrade to the gateway: the same checks, then the socket is piped through. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const parsed = parseGatewayUrl(req.url ?? "");
    const started = performance.now();
    const { status, admitted } = await carryUpgrade(
      req,
      socket,
      head,
      async () => this.admit(req, parsed, {}),
      { ...this.parts, exchanges: this.exchanges, route: GATEWAY_ROUTE },
    );
    this.parts.requests.record({
      method: req.method ?? "GET",
      route: GATEWAY_ROUTE,
      status,
      seconds: (performance.now() - started) / 1000,
      instance: parsed?.name,
      clientId: admitted?.target.record.clientId,
      credential: admitted?.credential,
    });
  }

  /** Cuts every open exchange (on shutdown; streams never end by themselves). */
  cutOpenExchanges(): void {
    this.exchanges.cutAll();
  }

  /** The token the request presents, checked against the instance its path names. */
  private admit(
    req: IncomingMessage,
    parsed: GatewayRequest | undefined,
    cors: HeaderMap,
  ): Admitted | Promise<Admitted> {
    const presented = parsed && presentedToken(req.method, req.headers, parsed);
    if (!parsed || !presented) throw invalidToken();
    const { config, now, admission } = this.parts;
    const ttl = config.signin.sseTokenTtlMs;
    const keys = this.parts.keys.get();
    if (!(keys instanceof Promise)) {
      const front = new GatewayCredential(presented, keys, now, ttl);
      const admitted = admission.admitNow(parsed.name, front);
      if (admitted) return this.admitted(admitted, parsed, keys, cors);
    }
    return (async () => {
      const known = await keys;
      const front = new GatewayCredential(presented, known, now, ttl);
      return this.admitted(await admission.admit(parsed.name, front), parsed, known, cors);
    })();
  }

  private admitted(
    { target, credential }: { target: ServingTarget; credential: Credential },
    parsed: GatewayRequest,
    keys: TokenKeys,
    cors: HeaderMap,
  ): Admitted {
    this.parts.metrics.countCredential(credential);
    return {
      target,
      credential,
      call: {
        host: target.pod.host,
        port: target.pod.port,
        authorization: tokenFor(target, keys).authorization,
        prefix: parsed.prefix,
        upstreamPath: parsed.upstreamPath,
        responseHeaders: cors,
      },
    };
  }

  private corsOf(origin: string | undefined): HeaderMap {
    const allowed = this.parts.config.gateway.corsOrigins;
    // Origins outside the list share one answer: the map stays as small as the list.
    const key = origin !== undefined && allowed.includes(origin) ? origin : undefined;
    let headers = this.cors.get(key);
    if (!headers) {
      headers = corsHeaders(key, allowed);
      this.cors.set(key, headers);
    }
    return headers;
  }
}
