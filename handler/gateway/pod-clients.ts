import { Client } from "undici";

/**
 * An idle connection to a pod is closed after this long, before the pod would close it (a
 * Node server after 5 s; gptme-server closes every connection after one answer): a request
 * never goes out on a connection its server is closing. A pod that announces a shorter
 * `Keep-Alive: timeout` is believed, less a second.
 */
export const UPSTREAM_IDLE_MS = 4_000;
/** Idle connections kept per pod: as many as requests in flight to one pod at a busy moment. */
const MAX_IDLE_PER_POD = 64;

/**
 * The connections to pods: one undici Client per connection (one exchange at a time on it),
 * idle ones kept per pod for the next request. A Client is taken for an exchange and given
 * back when its answer is over, or destroyed when the exchange is cut: destroying the one
 * connection is what a client going away must cost (undici's own pool would open a spare
 * connection for an aborted request: nodejs/undici#5845). A connection that closes while
 * idle (its idle time ran out, or the pod closed it) leaves the pool.
 */
export class PodClients {
  private readonly idle = new Map<string, Client[]>();
  /** The connections whose socket is up (a Client without one would only connect again). */
  private readonly connected = new WeakSet<Client>();

  constructor(private readonly options: { headersTimeoutMs: number }) {}

  /** A connection to `origin` for one exchange: an idle one, else a new one. */
  take(origin: string): Client {
    const idle = this.idle.get(origin);
    let client = idle?.pop();
    while (client && (client.closed || client.destroyed)) client = idle?.pop();
    if (idle?.length === 0) this.idle.delete(origin);
    return client ?? this.connect(origin);
  }

  /** Gives back a connection whose exchange is over, answer and all. */
  give(origin: string, client: Client): void {
    if (client.closed || client.destroyed) return;
    if (!this.connected.has(client)) {
      void client.destroy();
      return;
    }
    let idle = this.idle.get(origin);
    if (!idle) {
      idle = [];
      this.idle.set(origin, idle);
    }
    if (idle.length >= MAX_IDLE_PER_POD) {
      void client.close();
      return;
    }
    idle.push(client);
  }

  /** How many idle connections are kept (for tests and metrics). */
  get idleCount(): number {
    let count = 0;
    for (const idle of this.idle.values()) count += idle.length;
    return count;
  }

  close(): void {
    for (const idle of this.idle.values()) for (const client of idle) void client.destroy();
    this.idle.clear();
  }

  private connect(origin: string): Client {
    const client = new Client(origin, {
      keepAliveTimeout: UPSTREAM_IDLE_MS,
      keepAliveTimeoutThreshold: 1_000,
      headersTimeout: this.options.headersTimeoutMs,
      // An event stream may stay quiet for long; the client's going away ends it.
      bodyTimeout: 0,
    });
    client.on("connect", () => this.connected.add(client));
    // Closed while idle: out of the pool (it would only connect again to no purpose).
    client.on("disconnect", () => {
      this.connected.delete(client);
      const idle = this.idle.get(origin);
      const at = idle?.indexOf(client) ?? -1;
      if (!idle || at === -1) return;
      idle.splice(at, 1);
      if (idle.length === 0) this.idle.delete(origin);
      void client.destroy();
    });
    return client;
  }
}
