import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { CoreV1Api, type KubeConfig, type V1PodTemplate } from "@kubernetes/client-node";
import type { H3 } from "h3";
import { Metrics } from "../../handler/metrics.js";
import { createFleetHandler, type FleetHandler } from "../../handler/server.js";
import { installFleetQuota as installQuota } from "../../scripts/lib/fleet-quota.js";
import { type HandlerConfig, loadHandlerConfig } from "../../shared/config/load.js";
import { Kube, type Resource, type Verb } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import { adminKubeConfig } from "./cluster.js";

/** Counts the Kubernetes API calls an app makes, by "verb resource". */
export class CallCounter {
  readonly calls: string[] = [];
  call(verb: Verb, resource: Resource) {
    this.calls.push(`${verb} ${resource}`);
  }
  reset() {
    this.calls.length = 0;
  }
}

/** Log lines a logger wrote, kept in memory. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void) {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    done();
  }
}

/** A response whose JSON body tests read field by field. */
// biome-ignore lint/suspicious/noExplicitAny: assertions check the body's shape
export type TestResponse = Omit<Response, "json"> & { json(): Promise<any> };

export interface TestHandler {
  app: H3;
  fleet: FleetHandler;
  kube: Kube;
  config: HandlerConfig;
  counter: CallCounter;
  logs: LogCapture;
  metrics: Metrics;
  request(path: string, init?: RequestInit & { apiKey?: string }): Promise<TestResponse>;
  close(): void;
}

/**
 * A handler app in-process against the real API server, configured like production through
 * environment variables; `kc` selects whose credentials it uses (admin by default).
 */
export function startHandler(
  namespace: string,
  env: Record<string, string> = {},
  kc: KubeConfig = adminKubeConfig(),
  now?: () => Date,
): TestHandler {
  const config = loadHandlerConfig({
    // Tests name clients by arbitrary keys: open, unless a test chooses (CLIENT_AUTH).
    env: { NAMESPACE: namespace, LOG_LEVEL: "info", CLIENT_AUTH: "open", ...env },
    readFile: (path) => readFileSync(path, "utf8"),
  });
  const counter = new CallCounter();
  const logs = new LogCapture();
  const metrics = new Metrics();
  const kube = new Kube(credentialsOf(kc), namespace, {
    call: (verb, resource) => {
      counter.call(verb, resource);
      metrics.kubeObserver.call?.(verb, resource);
    },
    error: metrics.kubeObserver.error,
  });
  const log = createLogger({ level: "info", name: "fleet-handler" }, logs);
  const fleet = createFleetHandler({ config, kube, log, metrics, now });
  const app = fleet.app;
  return {
    app,
    fleet,
    kube,
    config,
    counter,
    logs,
    metrics,
    request: async (path, init = {}) => {
      const { apiKey, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (apiKey !== undefined) headers.set("x-api-key", apiKey);
      return app.request(path, { ...rest, headers });
    },
    close: () => fleet.close(),
  };
}

/** scripts/lib/fleet-quota.ts against the test cluster. */
export const installFleetQuota = (namespace: string, hard: number): Promise<void> =>
  installQuota(adminKubeConfig().makeApiClient(CoreV1Api), namespace, hard);

/** A PodTemplate like the production one, minus what the handler must enforce on its own. */
export function bareTemplate(name = "gptme-client"): V1PodTemplate {
  return {
    metadata: { name },
    template: {
      metadata: { labels: { app: "gptme-server" } },
      spec: {
        containers: [
          {
            name: "gptme-server",
            image: "ghcr.io/gptme/gptme-server:latest",
            args: ["gptme-server", "serve", "--host", "0.0.0.0", "--port", "5700"],
            ports: [{ name: "http", containerPort: 5700 }],
          },
        ],
      },
    },
  };
}

export async function installTemplate(namespace: string, template = bareTemplate()): Promise<void> {
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedPodTemplate({ namespace, body: template });
}

/** A TestHandler served over real HTTP (the gateway streams on node:http), upgrades included. */
export async function listenHandler(
  handler: TestHandler,
  port = 0,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler.fleet.handle);
  server.on("upgrade", handler.fleet.upgrade);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const listening = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${listening}`,
    close: async () => {
      handler.fleet.gateway.cutOpenExchanges();
      handler.fleet.previews?.cutOpenExchanges();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
