import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { H3 } from "h3";
import { toNodeHandler } from "h3/node";
import { type AppDeps, createApp } from "./app.js";
import { Gateway } from "./gateway/gateway.js";
import { isGatewayUrl } from "./gateway/request.js";
import { Targets } from "./gateway/targets.js";
import { Instances } from "./instances/instances.js";
import { ServingProbes } from "./instances/serving.js";
import { TokenKeyring } from "./token-keyring.js";

/** The handler as a node:http server runs it: the routes, the gateway, and upgrades. */
export interface FleetHandler {
  /** The routes (h3); tests call them in-process with `app.request`. */
  app: H3;
  gateway: Gateway;
  handle(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

/**
 * Wires the handler: the gateway's traffic goes straight to its proxy on node:http streams
 * (no Request/Response conversion on the hot path of every proxied byte); everything else
 * is the h3 app.
 */
export function createFleetHandler(deps: AppDeps): FleetHandler {
  const { config, kube, metrics } = deps;
  const now = deps.now ?? (() => new Date());
  const keyring = new TokenKeyring(config.instanceTokenKeys, kube, config.credentialsReloadMs);
  const targets = new Targets(kube);
  const serving = new ServingProbes({ kube, now, shutdown: deps.shutdown });
  const instances = new Instances({
    kube,
    config,
    now,
    events: metrics.instanceEvents,
    keyring,
    serving,
    onRemoved: (name) => targets.forget(name),
    shutdown: deps.shutdown,
  });
  const app = createApp(deps, { keyring, instances });
  const gateway = new Gateway({ ...deps, keyring, instances, targets, serving, now });
  metrics.countOpenExchanges(() => gateway.openExchanges);
  const routes = toNodeHandler(app);
  return {
    app,
    gateway,
    handle: (req, res) => {
      if (isGatewayUrl(req.url)) void gateway.handle(req, res);
      else void routes(req, res);
    },
    upgrade: (req, socket, head) => {
      if (isGatewayUrl(req.url)) void gateway.upgrade(req, socket, head);
      else socket.destroy();
    },
    close: () => {
      gateway.close();
      kube.close();
    },
  };
}
