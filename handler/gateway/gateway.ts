import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { V1Pod } from "@kubernetes/client-node";
import { instanceByPodName } from "../../shared/actions/instances.js";
import type { TokenKeyring } from "../../shared/actions/token-keyring.js";
import type { HandlerConfig } from "../../shared/config/load.js";
import { type InstanceRecord, recordOf } from "../../shared/instance/record.js";
import { type Connection, connectionOf, statusOf } from "../../shared/instance/status.js";
import type { Kube } from "../../shared/kube/client.js";
import type { Logger } from "../../shared/log.js";
import type { TokenKeys } from "../../shared/tokens/instance-token.js";
import { tokenOf } from "../../shared/tokens/instance-token.js";
import { corsHeaders, type HeaderMap, isPreflight, preflightHeaders } from "../cors.js";
import { answerError } from "../errors/answer.js";
import type { Instances } from "../instances/instances.js";
import type { ServingProbes } from "../instances/serving.js";
import type { Metrics } from "../metrics.js";
import { recordRequest } from "../request-log.js";
import { GatewayActivity } from "./activity.js";
import {
  type Credential,
  credentialOf,
  type PresentedToken,
  presentedToken,
} from "./credentials.js";
import { holdUntilServing } from "./hold.js";
import { InstanceProxy, type ProxyCall, tooLarge } from "./proxy.js";
import { invalidToken, Refusal, rejectUpgrade, sendAnswer, sendRefusal } from "./refusal.js";
import { GATEWAY_ROUTE, type GatewayRequest, parseGatewayUrl } from "./request.js";
import type { Target, Targets } from "./targets.js";

export interface GatewayDeps {
  config: HandlerConfig;
  kube: Kube;
  keyring: TokenKeyring;
  instances: Instances;
  /** The instances' Pods as this replica last read them (shared with the routes, which drop deleted ones). */
  targets: Targets;
  /** Asks starting gptme-servers whether they answer (shared with the instance routes). */
  serving: ServingProbes;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
}

/**
 * The instance gateway: `/api/v1/instances/<name>/...` carries a client's traffic to its
 * instance's gptme-server. Every exchange is authenticated with the instance's own token
 * (the same 401 whether or not the instance exists), reaches only a Ready pod, never
 * creates an instance, and counts as activity for as long as it stays open.
 */
export class Gateway {
  private readonly targets: Targets;
  private readonly activity: GatewayActivity;
  private readonly proxy: InstanceProxy;
  /** Pods being started again here: the requests held for one instance share its restart. */
  private readonly healing = new Map<string, Promise<V1Pod | undefined>>();
  /** Open exchanges, cut when the process shuts down (streams never end by themselves). */
  private readonly open = new Set<{ destroy(): void }>();

  constructor(private readonly deps: GatewayDeps) {
    const { config, instances, log } = deps;
    this.targets = deps.targets;
    this.activity = new GatewayActivity(
      instances,
      this.targets,
      config.activityIntervalMs,
      log,
      deps.now,
    );
    this.proxy = new InstanceProxy({
      timeoutMs: config.gateway.proxyTimeoutMs,
      maxBodyBytes: config.gateway.proxyMaxBodyBytes,
    });
  }

  /** Exchanges in flight (streams included). */
  get openExchanges(): number {
    return this.activity.openStreams;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const parsed = parseGatewayUrl(req.url ?? "");
    const origin = req.headers.origin;
    const cors = corsHeaders(origin, this.deps.config.gateway.corsOrigins);
    let record: InstanceRecord | undefined;
    let credential: Credential | undefined;
    res.once("close", () =>
      recordRequest(
        {
          method: req.method ?? "GET",
          route: GATEWAY_ROUTE,
          status: res.statusCode,
          seconds: (performance.now() - started) / 1000,
          clientId: record?.clientId,
          instance: parsed?.name,
          credential,
        },
        this.deps.log,
        this.deps.metrics,
      ),
    );
    if (isPreflight(req.method, req.headers as HeaderMap)) {
      res.writeHead(204, preflightHeaders(origin, this.deps.config.gateway.corsOrigins)).end();
      return;
    }
    try {
      const { call, target, kind } = await this.admit(req, parsed, cors);
      record = target.record;
      credential = kind;
      const length = Number(req.headers["content-length"] ?? 0);
      if (length > this.deps.config.gateway.proxyMaxBodyBytes) {
        throw tooLarge(this.deps.config.gateway.proxyMaxBodyBytes);
      }
      this.track(res, target);
      await this.proxy.web(req, res, call, (failure) => {
        if (failure.code === "instance_unreachable" && parsed) this.targets.forget(parsed.name);
        sendRefusal(res, failure, cors);
      });
    } catch (error) {
      sendAnswer(res, answerError(error, this.deps.log, GATEWAY_ROUTE), cors);
    }
  }

  /** A WebSocket upgrade to the gateway: the same checks, then the socket is piped through. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const parsed = parseGatewayUrl(req.url ?? "");
    try {
      const { call, target } = await this.admit(req, parsed, {});
      this.track(socket, target);
      await this.proxy.ws(req, socket, head, call);
    } catch (error) {
      rejectUpgrade(socket, answerError(error, this.deps.log, GATEWAY_ROUTE));
    }
  }

  /**
   * Cuts every open exchange: on shutdown, event streams and WebSockets would otherwise
   * hold the drain until its bound. Clients reconnect, through another replica.
   */
  cutOpenExchanges(): void {
    for (const exchange of this.open) exchange.destroy();
  }

  close(): void {
    this.proxy.close();
  }

  /** Counts the exchange as activity while it is open, and keeps it cuttable. */
  private track(exchange: ServerResponse | Duplex, target: Target): void {
    this.activity.noteRequest(target);
    const close = this.activity.open(target.pod.metadata?.name ?? "");
    this.open.add(exchange);
    exchange.once("close", () => {
      close();
      this.open.delete(exchange);
    });
  }

  /** Checks the token and the instance's readiness; what to forward, or a Refusal. */
  private async admit(
    req: IncomingMessage,
    parsed: GatewayRequest | undefined,
    cors: HeaderMap,
  ): Promise<{ call: ProxyCall; target: Target; kind: Credential }> {
    const presented = parsed && presentedToken(req.method, req.headers, parsed);
    if (!parsed || !presented) throw invalidToken();
    const keys = await this.deps.keyring.keys();
    let decision = await this.decide(parsed, presented, keys, false);
    // A cached lookup may predate the instance's new Pod (recreated, or Ready a moment
    // ago): read once more before turning the request away.
    if (decision instanceof Refusal && decision.details.cached) {
      decision = await this.decide(parsed, presented, keys, true);
    }
    // Its Pod is gone (drained, evicted, replaced by a rollout) or ended: start it again, as
    // GET /instances/:id would, and hold the request until it answers (GATEWAY_HOLD).
    if (decision instanceof Refusal && decision.details.missing) {
      const pod = await this.heal(parsed.name);
      if (pod && statusOf(pod) === "ready") {
        this.targets.remember(parsed.name, pod);
        decision = await this.decide(parsed, presented, keys, false);
      }
    }
    // Its own Pod is starting: hold the request until gptme-server answers.
    if (
      decision instanceof Refusal &&
      decision.details.starting &&
      (await holdUntilServing(
        decision.details.starting,
        this.deps.serving,
        this.targets,
        this.deps.config.gateway.holdMs,
      ))
    ) {
      decision = await this.decide(parsed, presented, keys, false);
    }
    if (decision instanceof Refusal) throw decision;
    const { target, connection, token, kind } = decision;
    this.deps.metrics.gatewayCredentials.inc({ kind });
    return {
      kind,
      target,
      call: {
        host: connection.host,
        port: connection.port,
        token,
        prefix: parsed.prefix,
        upstreamPath: parsed.upstreamPath,
        responseHeaders: cors,
      },
    };
  }

  /**
   * Starts an instance's Pod again and waits for it within the hold. Other replicas may do
   * the same at once: the Pod's fixed name lets only one create succeed (the others use it).
   */
  private heal(name: string): Promise<V1Pod | undefined> {
    let healing = this.healing.get(name);
    if (!healing) {
      const deadline = Date.now() + this.deps.config.gateway.holdMs;
      healing = this.deps.instances
        .restart(name, deadline)
        .finally(() => this.healing.delete(name));
      this.healing.set(name, healing);
    }
    return healing;
  }

  private async decide(
    parsed: GatewayRequest,
    presented: PresentedToken,
    keys: TokenKeys,
    fresh: boolean,
  ): Promise<
    Refusal | { target: Target; connection: Connection; token: string; kind: Credential }
  > {
    const { target, cached } = await this.targets.get(parsed.name, { fresh });
    const record = target?.record ?? (await this.clientPodRecord(parsed.name));
    const expected = record && tokenOf(record, keys);
    const now = this.deps.now?.() ?? new Date();
    const ttlMs = this.deps.config.signin.sseTokenTtlMs;
    const kind = record && expected && credentialOf(presented, expected, record, keys, now, ttlMs);
    if (!record || !expected || !kind) {
      return invalidToken(cached);
    }
    const connection = target && connectionOf(target.pod);
    const ownPod = target?.record?.uid === record.uid;
    const status = target && statusOf(target.pod);
    if (!target || !ownPod || status !== "ready") {
      return new Refusal(
        "instance_starting",
        "The instance is not ready yet; GET /instances/<id> starts it if needed, then try again.",
        {
          cached,
          starting: ownPod && status === "starting" ? target : undefined,
          missing: !target || !ownPod || status === "failed" || status === "terminating",
        },
      );
    }
    if (!connection) throw new Error("a serving Pod without an address");
    return { target, connection, token: expected, kind };
  }

  /** An instance whose Pod is missing (being created or replaced) is known by its ClientPod. */
  private async clientPodRecord(podName: string): Promise<InstanceRecord | undefined> {
    const clientPod = await instanceByPodName(this.deps.kube, podName);
    return clientPod && recordOf(clientPod);
  }
}
