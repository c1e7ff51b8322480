import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { PreviewConfig } from "../../shared/config/load.js";
import type { InstanceRecord } from "../../shared/instance/record.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { answerError } from "../errors/answer.js";
import type { FleetError } from "../errors/fleet-error.js";
import type { Front } from "../gateway/admission.js";
import type { ServingTarget } from "../gateway/decision.js";
import { Exchanges, recordWhenClosed } from "../gateway/exchanges.js";
import type { GatewayParts } from "../gateway/gateway.js";
import type { ProxyCall } from "../gateway/headers.js";
import { tooLarge } from "../gateway/proxy.js";
import { sendAnswer } from "../gateway/refusal.js";
import { type Target, tokenFor } from "../gateway/target.js";
import { carryUpgrade } from "../gateway/upgrade.js";
import type { SigninCodes } from "../signin/code-store.js";
import { rewritePreviewHeaders } from "./headers.js";
import { isUnderDomain, type PreviewTarget, parsePreviewHost } from "./host.js";
import { takeCode } from "./link.js";
import { refuse as refusePage } from "./page.js";
import { notFound, PREVIEW_ROUTE, signInRequired, starting } from "./refusals.js";
import {
  cookiesOf,
  isValidSession,
  SESSION_COOKIE,
  sessionSetCookie,
  signSession,
  withoutSessionCookie,
} from "./session.js";

export interface PreviewGatewayParts extends GatewayParts {
  previews: PreviewConfig;
  codes: SigninCodes;
}

/**
 * The preview hosts: `<port>-<instance name>.<PREVIEW_DOMAIN>` serves what the instance's
 * gptme-server serves at `/preview/<port>/` (an app the agent started), on an origin of its
 * own. A browser is signed in to one host by a one-time link (a cookie for that host alone,
 * bound to the instance's uid and the port). This front reads the host and the session; the
 * gateway's admission decides (a starting instance is held; a missing Pod is not started
 * from here), and its proxy forwards with the instance's token.
 */
export class PreviewGateway {
  readonly exchanges: Exchanges;

  constructor(private readonly parts: PreviewGatewayParts) {
    this.exchanges = new Exchanges(parts.activity);
  }

  /** Whether a request is for a preview host: every host under the preview domain is. */
  owns(host: string | undefined): boolean {
    return isUnderDomain(host, this.parts.previews.domain);
  }

  /** Exchanges in flight (streams included). */
  get openExchanges(): number {
    return this.exchanges.count;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const { config, log, requests } = this.parts;
    const host = parsePreviewHost(req.headers.host, this.parts.previews.domain);
    const facts = recordWhenClosed(req, res, PREVIEW_ROUTE, requests, host?.name);
    const refuse = (error: unknown) => refusePage(req, res, answerError(error, log, PREVIEW_ROUTE));
    const forward = ({ target, call }: Admitted) => {
      facts.clientId = target.record.clientId;
      // The client went away while it was held: nothing to forward, nothing to keep open.
      if (facts.closed) return;
      const max = config.gateway.proxyMaxBodyBytes;
      if (Number(req.headers["content-length"] ?? 0) > max) throw tooLarge(max);
      facts.close = this.exchanges.begin(res, target);
      this.parts.proxy.web(req, res, call, (failure) => {
        if (failure.code === "instance_unreachable") this.parts.targets.forget(target.podName);
        sendAnswer(res, answerError(failure, log, PREVIEW_ROUTE));
      });
    };
    try {
      if (!host || !req.url?.startsWith("/")) throw notFound();
      const { code, rest } = takeCode(req.url);
      if (code !== undefined) {
        this.signIn(res, host, code, rest).then((record) => {
          facts.clientId = record.clientId;
        }, refuse);
        return;
      }
      const admitted = this.admit(req, host);
      if (admitted instanceof Promise) admitted.then(forward).catch(refuse);
      else forward(admitted);
    } catch (error) {
      refuse(error);
    }
  }

  /** A WebSocket upgrade on a preview host: the same checks, then the socket is piped through. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const host = parsePreviewHost(req.headers.host, this.parts.previews.domain);
    const started = performance.now();
    const { status, admitted } = await carryUpgrade(
      req,
      socket,
      head,
      async () => {
        if (!host || !req.url?.startsWith("/")) throw notFound();
        return this.admit(req, host);
      },
      { ...this.parts, exchanges: this.exchanges, route: PREVIEW_ROUTE },
    );
    this.parts.requests.record({
      method: req.method ?? "GET",
      route: PREVIEW_ROUTE,
      status,
      seconds: (performance.now() - started) / 1000,
      instance: host?.name,
      clientId: admitted?.target.record.clientId,
    });
  }

  /** Cuts every open exchange (on shutdown, as the instance gateway does). */
  cutOpenExchanges(): void {
    this.exchanges.cutAll();
  }

  /**
   * Follows a sign-in link: consumes its code (once, for this port, minted for this very
   * instance), sets the session cookie for this host and sends the browser to the same URL
   * without the code. Any failure is the one 401.
   */
  private async signIn(
    res: ServerResponse,
    host: PreviewTarget,
    code: string,
    rest: string,
  ): Promise<InstanceRecord> {
    const { codes, targets, previews, config, now } = this.parts;
    const minted = await codes.redeem(code, `preview:${host.port}`);
    if (!minted || minted.name !== host.name) throw signInRequired();
    // The instance as it is now: a code minted for an instance since recreated signs in to nothing.
    const { target } = await targets.get(host.name, { fresh: true });
    const record = target?.record;
    if (!record || record.uid !== minted.uid) throw signInRequired();
    const keys = await this.parts.keys.get();
    const ttl = previews.sessionTtlMs;
    const session = signSession(
      keys,
      { hostname: host.hostname, uid: record.uid, port: host.port },
      new Date(now().getTime() + ttl),
    );
    const secure = config.gateway.publicUrl?.startsWith("https:") ?? false;
    res.writeHead(302, {
      location: rest,
      "set-cookie": sessionSetCookie(session, ttl, secure),
      // The link is spent: neither caches nor the next page's Referer keep it.
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "content-length": "0",
    });
    res.end();
    return record;
  }

  /** The session the request carries, checked against the instance its host names. */
  private admit(req: IncomingMessage, host: PreviewTarget): Admitted | Promise<Admitted> {
    const { admission, now } = this.parts;
    const sessions = cookiesOf(req.headers.cookie, SESSION_COOKIE);
    const keys = this.parts.keys.get();
    if (!(keys instanceof Promise)) {
      const admitted = admission.admitNow(host.name, new PreviewSession(host, sessions, keys, now));
      if (admitted) return admittedCall(req, host, admitted.target, keys);
    }
    return (async () => {
      const known = await keys;
      const front = new PreviewSession(host, sessions, known, now);
      const { target } = await admission.admit(host.name, front);
      return admittedCall(req, host, target, known);
    })();
  }
}

interface Admitted {
  target: ServingTarget;
  call: ProxyCall;
}

/** What the pod receives of an admitted request: the app's path, the instance's token, no fleet cookie. */
function admittedCall(
  req: IncomingMessage,
  host: PreviewTarget,
  target: ServingTarget,
  keys: TokenKeys,
): Admitted {
  // The fleet's cookie stays with the fleet.
  const cookies = withoutSessionCookie(req.headers.cookie);
  if (cookies === undefined) delete req.headers.cookie;
  else req.headers.cookie = cookies;
  const upstreamPrefix = `/preview/${host.port}`;
  return {
    target,
    call: {
      host: target.pod.host,
      port: target.pod.port,
      authorization: tokenFor(target, keys).authorization,
      prefix: "",
      upstreamPrefix,
      upstreamPath: upstreamPrefix + (req.url ?? "/"),
      responseHeaders: {},
      rewriteHeaders: rewritePreviewHeaders,
    },
  };
}

/**
 * How a preview host admits a request: a session cookie for this host, port and instance
 * (an unknown instance, or one without a token key: 404). A missing Pod is not started from
 * here; a starting one is waited for.
 */
class PreviewSession implements Front<true> {
  readonly heals = false;
  readonly unknown = notFound;
  readonly notServing = starting;

  constructor(
    private readonly host: PreviewTarget,
    private readonly sessions: string[],
    private readonly keys: TokenKeys,
    private readonly now: () => Date,
  ) {}

  check(target: Target): true | FleetError {
    return sessionOf(target, this.host, this.sessions, this.keys, this.now());
  }
}

/**
 * Whether the request's session is one for this host, port and instance. Every cookie of the
 * session's name counts: one set for a parent domain by another host's script cannot shadow
 * this host's own.
 */
function sessionOf(
  target: Target,
  host: PreviewTarget,
  sessions: string[],
  keys: TokenKeys,
  now: Date,
): true | FleetError {
  if (tokenFor(target, keys).token === undefined) return notFound();
  const subject = { hostname: host.hostname, uid: target.record.uid, port: host.port };
  return sessions.some((value) => isValidSession(value, keys, subject, now))
    ? true
    : signInRequired();
}
