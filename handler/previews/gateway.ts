import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig, PreviewConfig } from "../../shared/config/load.js";
import { type InstanceRecord, recordOf } from "../../shared/instance/record.js";
import { connectionOf, statusOf } from "../../shared/instance/status.js";
import type { Kube } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { tokenOf } from "../../shared/tokens/instance-token.js";
import { answerError } from "../errors/answer.js";
import { GatewayActivity } from "../gateway/activity.js";
import { holdUntilServing } from "../gateway/hold.js";
import { InstanceProxy, type ProxyCall, tooLarge } from "../gateway/proxy.js";
import { Refusal, rejectUpgrade, sendRefusal } from "../gateway/refusal.js";
import type { Target, Targets } from "../gateway/targets.js";
import type { Instances } from "../instances/instances.js";
import type { ServingProbes } from "../instances/serving.js";
import type { Metrics } from "../metrics.js";
import { recordRequest } from "../request-log.js";
import type { SigninCodes } from "../signin/code-store.js";
import { rewritePreviewHeaders } from "./headers.js";
import { isUnderDomain, type PreviewTarget, parsePreviewHost } from "./host.js";
import { takeCode } from "./link.js";
import { refuse } from "./page.js";
import { notFound, PREVIEW_ROUTE, signInRequired, starting } from "./refusals.js";
import {
  cookiesOf,
  isValidSession,
  SESSION_COOKIE,
  sessionSetCookie,
  signSession,
  withoutSessionCookie,
} from "./session.js";

export interface PreviewGatewayDeps {
  config: HandlerConfig;
  previews: PreviewConfig;
  kube: Kube;
  keyring: TokenKeyring;
  instances: Instances;
  /** Shared with the instance gateway and the routes. */
  targets: Targets;
  /** Asks a starting instance's gptme-server whether it answers (shared with the gateway). */
  serving: ServingProbes;
  codes: SigninCodes;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
}

/**
 * The preview hosts: `<port>-<instance name>.<PREVIEW_DOMAIN>` serves what the instance's
 * gptme-server serves at `/preview/<port>/` (an app the agent started), on an origin of its
 * own. A browser is signed in to one host by a one-time link (a cookie for that host alone,
 * bound to the instance's uid and the port); everything else about forwarding is the
 * instance gateway's: its proxy, its activity, the instance's token towards the pod.
 */
export class PreviewGateway {
  private readonly activity: GatewayActivity;
  private readonly proxy: InstanceProxy;
  private readonly open = new Set<{ destroy(): void }>();
  private readonly now: () => Date;

  constructor(private readonly deps: PreviewGatewayDeps) {
    const { config, instances, targets, log } = deps;
    this.now = deps.now ?? (() => new Date());
    this.activity = new GatewayActivity(
      instances,
      targets,
      config.activityIntervalMs,
      log,
      this.now,
    );
    this.proxy = new InstanceProxy({
      timeoutMs: config.gateway.proxyTimeoutMs,
      maxBodyBytes: config.gateway.proxyMaxBodyBytes,
    });
  }

  /** Whether a request is for a preview host: every host under the preview domain is. */
  owns(host: string | undefined): boolean {
    return isUnderDomain(host, this.deps.previews.domain);
  }

  /** Exchanges in flight (streams included). */
  get openExchanges(): number {
    return this.activity.openStreams;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const host = parsePreviewHost(req.headers.host, this.deps.previews.domain);
    let record: InstanceRecord | undefined;
    res.once("close", () =>
      recordRequest(
        {
          method: req.method ?? "GET",
          route: PREVIEW_ROUTE,
          status: res.statusCode,
          seconds: (performance.now() - started) / 1000,
          clientId: record?.clientId,
          instance: host?.name,
        },
        this.deps.log,
        this.deps.metrics,
      ),
    );
    try {
      if (!host || !req.url?.startsWith("/")) throw notFound();
      const { code, rest } = takeCode(req.url);
      if (code !== undefined) {
        record = await this.signIn(res, host, code, rest);
        return;
      }
      const admitted = await this.admit(req, host);
      record = admitted.record;
      const length = Number(req.headers["content-length"] ?? 0);
      if (length > this.deps.config.gateway.proxyMaxBodyBytes) {
        throw tooLarge(this.deps.config.gateway.proxyMaxBodyBytes);
      }
      this.track(res, admitted.target);
      await this.proxy.web(req, res, admitted.call, (failure) => {
        if (failure.code === "instance_unreachable") {
          this.deps.targets.forget(admitted.target.pod.metadata?.name ?? host.name);
        }
        sendRefusal(res, failure);
      });
    } catch (error) {
      refuse(req, res, answerError(error, this.deps.log, PREVIEW_ROUTE));
    }
  }

  /** A WebSocket upgrade on a preview host: the same checks, then the socket is piped through. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const host = parsePreviewHost(req.headers.host, this.deps.previews.domain);
    try {
      if (!host || !req.url?.startsWith("/")) throw notFound();
      const { target, call } = await this.admit(req, host);
      this.track(socket, target);
      await this.proxy.ws(req, socket, head, call);
    } catch (error) {
      rejectUpgrade(socket, answerError(error, this.deps.log, PREVIEW_ROUTE));
    }
  }

  /** Cuts every open exchange (on shutdown, as the instance gateway does). */
  cutOpenExchanges(): void {
    for (const exchange of this.open) exchange.destroy();
  }

  close(): void {
    this.proxy.close();
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
    const minted = await this.deps.codes.redeem(code, `preview:${host.port}`);
    if (!minted || minted.name !== host.name) throw signInRequired();
    // The instance as it is now: a code minted for an instance since recreated signs in to nothing.
    const { target } = await this.deps.targets.ofInstance(host.name, { fresh: true });
    const record = target?.record ?? (await this.clientPodRecord(host.name));
    if (!record || record.uid !== minted.uid) throw signInRequired();
    const keys = await this.deps.keyring.keys();
    const ttl = this.deps.previews.sessionTtlMs;
    const session = signSession(
      keys,
      { hostname: host.hostname, uid: record.uid, port: host.port },
      new Date(this.now().getTime() + ttl),
    );
    const secure = this.deps.config.gateway.publicUrl?.startsWith("https:") ?? false;
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

  /** Checks the host's instance, the session and readiness; what to forward, or a Refusal. */
  private async admit(
    req: IncomingMessage,
    host: PreviewTarget,
  ): Promise<{ call: ProxyCall; target: Target; record: InstanceRecord }> {
    const keys = await this.deps.keyring.keys();
    let decision = await this.decide(req, host, keys, false);
    // A cached lookup may predate the instance's new Pod: read once more before refusing.
    if (decision instanceof Refusal && decision.details.cached) {
      decision = await this.decide(req, host, keys, true);
    }
    // Its own Pod is starting: hold the request until gptme-server answers, as the gateway does.
    const { serving, targets, config } = this.deps;
    if (
      decision instanceof Refusal &&
      decision.details.starting &&
      (await holdUntilServing(decision.details.starting, serving, targets, config.gateway.holdMs))
    ) {
      decision = await this.decide(req, host, keys, false);
    }
    if (decision instanceof Refusal) throw decision;
    // The fleet's cookie stays with the fleet.
    const cookies = withoutSessionCookie(req.headers.cookie);
    if (cookies === undefined) delete req.headers.cookie;
    else req.headers.cookie = cookies;
    return decision;
  }

  private async decide(
    req: IncomingMessage,
    host: PreviewTarget,
    keys: TokenKeys,
    fresh: boolean,
  ): Promise<Refusal | { call: ProxyCall; target: Target; record: InstanceRecord }> {
    const { target, cached } = await this.deps.targets.ofInstance(host.name, { fresh });
    const record = target?.record ?? (await this.clientPodRecord(host.name));
    const token = record && tokenOf(record, keys);
    if (!record || !token) return notFound(cached);
    const subject = { hostname: host.hostname, uid: record.uid, port: host.port };
    // Every cookie of the session's name counts: one set for a parent domain by another host's
    // script cannot shadow this host's own.
    const now = this.now();
    const sessions = cookiesOf(req.headers.cookie, SESSION_COOKIE);
    if (!sessions.some((value) => isValidSession(value, keys, subject, now))) {
      return signInRequired(cached);
    }
    const connection = target && connectionOf(target.pod);
    const ownPod = target?.record?.uid === record.uid;
    const status = target && statusOf(target.pod);
    if (!target || !ownPod || !connection || status !== "ready") {
      return starting(cached, ownPod && status === "starting" ? target : undefined);
    }
    const upstreamPrefix = `/preview/${host.port}`;
    return {
      target,
      record,
      call: {
        host: connection.host,
        port: connection.port,
        token,
        prefix: "",
        upstreamPrefix,
        upstreamPath: upstreamPrefix + (req.url ?? "/"),
        responseHeaders: {},
        rewriteHeaders: rewritePreviewHeaders,
      },
    };
  }

  private track(exchange: ServerResponse | Duplex, target: Target): void {
    this.activity.noteRequest(target);
    const close = this.activity.open(target.pod.metadata?.name ?? "");
    this.open.add(exchange);
    exchange.once("close", () => {
      close();
      this.open.delete(exchange);
    });
  }

  private async clientPodRecord(name: string): Promise<InstanceRecord | undefined> {
    const clientPod = await this.deps.kube.clientPods.get(name);
    return clientPod && recordOf(clientPod);
  }
}
