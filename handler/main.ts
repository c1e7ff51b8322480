#!/usr/bin/env node
import { setMaxListeners } from "node:events";
import { listen } from "listhen";
import { ConfigError, loadHandlerConfig } from "../shared/config/load.js";
import { Kube } from "../shared/kube/client.js";
import { loadKubeCredentials } from "../shared/kube/kubeconfig.js";
import { createLogger, LogOutput } from "../shared/log.js";
import { fleetVersion } from "../shared/version.js";
import { drain, keepConnections, onlyRequestListener } from "./connections.js";
import { Metrics } from "./metrics.js";
import { createFleetHandler } from "./server.js";

/** The longest a shutdown takes: in-flight requests, then the last log lines, then exit. */
const DRAIN_TIMEOUT_MS = 20_000;
/** The longest the last log lines may wait for a slow log reader, within the drain bound. */
const LOG_FLUSH_MS = 2_000;

// The one place that reads the environment and listens.
async function main(): Promise<void> {
  if (process.argv.slice(2).includes("--version")) {
    process.stdout.write(`fleet-handler ${fleetVersion()}\n`);
    process.exit(0);
  }
  let config: ReturnType<typeof loadHandlerConfig>;
  let credentials: Awaited<ReturnType<typeof loadKubeCredentials>>;
  try {
    config = loadHandlerConfig();
    credentials = await loadKubeCredentials();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`fleet-handler: invalid configuration: ${error.message}\n`);
    process.exit(2);
  }

  const output = new LogOutput();
  const log = createLogger({ level: config.logLevel, name: "fleet-handler" }, output);
  const metrics = new Metrics({ processMetrics: true });
  const kube = new Kube(credentials, config.namespace, metrics.kubeObserver);
  for (const file of config.credentialFiles) file.watch(log, metrics.credentialsObserver);
  const shutdown = new AbortController();
  // Every request waiting for readiness listens for shutdown; there is no fixed bound.
  setMaxListeners(0, shutdown.signal);
  const fleet = createFleetHandler({ config, kube, log, metrics, shutdown: shutdown.signal });

  let listener: Awaited<ReturnType<typeof listen>>;
  try {
    // isProd: a taken port is an error, never a silent move to another port.
    // autoClose: false: listhen's own signal handler would exit at once, dropping requests.
    listener = await listen(fleet.handle, {
      port: config.httpPort,
      isProd: true,
      autoClose: false,
      showURL: false,
      qr: false,
    });
  } catch (error) {
    log.fatal({ port: config.httpPort, reason: (error as Error).message }, "cannot listen");
    process.stderr.write(
      `fleet-handler: cannot listen on HTTP_PORT ${config.httpPort}: ${(error as Error).message}\n`,
    );
    process.exit(1);
  }
  listener.server.on("upgrade", fleet.upgrade);
  keepConnections(listener.server);
  onlyRequestListener(listener.server, fleet.handle);
  log.info(
    {
      port: config.httpPort,
      namespace: config.namespace,
      plans: config.plans.current().all.map((plan) => plan.name),
      defaultPlan: config.plans.current().defaultName,
      version: fleetVersion(),
    },
    "listening",
  );
  if (config.gateway.publicUrl === undefined) {
    log.warn(
      { variable: "PUBLIC_URL" },
      "PUBLIC_URL is not set: endpoint.url is null and sign-in exchanges answer 500 public_url_missing",
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    log.info({ signal }, "draining");
    // Readiness waits answer at once (202); the rest finishes, bounded.
    shutdown.abort();
    const drained = await drain(listener.server, fleet, DRAIN_TIMEOUT_MS);
    fleet.close();
    log.info({ drained }, "stopped");
    // A log reader that stops reading cannot hold the process past the bound.
    await output.flushed(Math.min(LOG_FLUSH_MS, deadline - Date.now()));
    process.exit(drained ? 0 : 1);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

await main();
