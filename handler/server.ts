import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { H3 } from "h3";
import { toNodeHandler } from "h3/node";
import { TokenKeyring } from "../shared/actions/token-keyring.js";
import { REAPER_STATS_NAME, reaperStatsOf } from "../shared/reaper-stats.js";
import { type AppDeps, createApp } from "./app.js";
import { GatewayActivity } from "./gateway/activity.js";
import { Admission } from "./gateway/admission.js";
import { Gateway, type GatewayParts } from "./gateway/gateway.js";
import { KeysAtHand } from "./gateway/keys.js";
import { InstanceProxy } from "./gateway/proxy.js";
import { isGatewayUrl } from "./gateway/request.js";
import { Targets } from "./gateway/targets.js";
import { ClientIdentities } from "./identity/clients.js";
import { Instances } from "./instances/instances.js";
import { ServingProbes } from "./instances/serving.js";
import { Templates } from "./instances/templates.js";
import { WarmPool } from "./pool/warm-pool.js";
import { PreviewGateway } from "./previews/gateway.js";
import { ReaperStatsCache } from "./reaper-metrics.js";
import { ProxiedRequestLog } from "./request-log.js";
import { SigninCodes } from "./signin/code-store.js";

/** The handler as a node:http server runs it: the routes, the gateway, and upgrades. */
export interface FleetHandler {
  /** The routes (h3); tests call them in-process with `app.request`. */
  app: H3;
  gateway: Gateway;
  /** The preview hosts; undefined while previews are off (no PREVIEW_DOMAIN). */
  previews: PreviewGateway | undefined;
  handle(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Shutting down: every answer not yet begun (and every later one) closes its connection
   * (`Connection: close`), so no client sends another request on it.
   */
  drain(): void;
  /** Cuts the exchanges that would not end by themselves: event streams, WebSockets. */
  cutStreams(): void;
  /** Answers in flight (streams included). */
  readonly inFlight: number;
  close(): void;
}

/**
 * Wires the handler: the gateway's and the preview hosts' traffic goes straight to their
 * one admission and proxy on node:http streams (no Request/Response conversion on the hot
 * path of every proxied byte); everything else is the h3 app.
 */
export function createFleetHandler(deps: AppDeps): FleetHandler {
  const { config, kube, metrics, log } = deps;
  const now = deps.now ?? (() => new Date());
  const nowMs = deps.now ? () => now().getTime() : Date.now;
  const keyring = new TokenKeyring(config.instanceTokenKeys, kube, config.credentialsReloadMs);
  // Read at start (before the readiness probe lets traffic in), so that no client's first
  // request on a new replica waits for the key Secret; a failure is retried by that request.
  keyring.keys().catch(() => undefined);
  const targets = new Targets(kube, nowMs);
  const serving = new ServingProbes({ kube, now, shutdown: deps.shutdown });
  // One read of a PodTemplate per 2 s for the replica's cold starts and pool refills alike.
  const templates = new Templates(kube, nowMs);
  // Always there: whether a plan has a pool is read per request (PLANS_FILE can change).
  const pool = new WarmPool({
    kube,
    config,
    keyring,
    serving,
    templates,
    now,
    events: metrics.poolEvents,
    log,
  });
  const instances = new Instances({
    kube,
    config,
    now,
    events: metrics.instanceEvents,
    keyring,
    serving,
    templates,
    pool,
    onRemoved: (name) => targets.forgetInstance(name),
    shutdown: deps.shutdown,
  });
  const identities = new ClientIdentities(config, log);
  identities.start();
  const codes = new SigninCodes(kube, now);
  const app = createApp(deps, { keyring, instances, identities, codes });
  const proxy = new InstanceProxy({
    timeoutMs: config.gateway.proxyTimeoutMs,
    maxBodyBytes: config.gateway.proxyMaxBodyBytes,
  });
  const requests = new ProxiedRequestLog(log, metrics);
  const parts: GatewayParts = {
    config,
    keys: new KeysAtHand(keyring, nowMs),
    admission: new Admission({ targets, instances, serving, holdMs: config.gateway.holdMs }),
    proxy,
    activity: new GatewayActivity(instances, targets, config.activityIntervalMs, log, nowMs),
    requests,
    targets,
    log,
    metrics,
    now,
  };
  const gateway = new Gateway(parts);
  // A preview host is the preview's alone, whatever its path: none reaches the API.
  const previews =
    config.previews && new PreviewGateway({ ...parts, previews: config.previews, codes });
  metrics.countOpenExchanges(() => gateway.openExchanges + (previews?.openExchanges ?? 0));
  metrics.knowPlans(() => config.plans.current().all.map((plan) => plan.name));
  const reaperStats = new ReaperStatsCache(async () => {
    const object = await kube.configMaps.get(REAPER_STATS_NAME);
    return object && reaperStatsOf(object.data);
  });
  metrics.reaper.readFrom(() => reaperStats.current());
  const routes = toNodeHandler(app);

  let draining = false;
  const answering = new Set<ServerResponse>();
  return {
    app,
    gateway,
    previews,
    handle: (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      answering.add(res);
      res.once("close", () => answering.delete(res));
      if (previews?.owns(req.headers.host)) void previews.handle(req, res);
      else if (isGatewayUrl(req.url)) void gateway.handle(req, res);
      else void routes(req, res);
    },
    upgrade: (req, socket, head) => {
      if (draining) socket.destroy();
      else if (previews?.owns(req.headers.host)) void previews.upgrade(req, socket, head);
      else if (isGatewayUrl(req.url)) void gateway.upgrade(req, socket, head);
      else socket.destroy();
    },
    drain: () => {
      draining = true;
      for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
    },
    cutStreams: () => {
      gateway.exchanges.cutStreams();
      previews?.exchanges.cutStreams();
    },
    get inFlight() {
      return answering.size;
    },
    close: () => {
      identities.stop();
      requests.close();
      proxy.close();
      pool.close();
      kube.close();
    },
  };
}
