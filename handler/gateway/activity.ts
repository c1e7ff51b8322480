import type { V1Pod } from "@kubernetes/client-node";
import { isActivityDue, isPhaseStale } from "../../shared/instance/status.js";
import type { Logger } from "../../shared/log.js";
import type { Instances } from "../instances/instances.js";
import { TARGET_TTL_MS, type Target, type Targets } from "./targets.js";

/**
 * Use keeps an instance alive: every proxied request counts as activity (at most one write
 * per instance per interval), and so does every open stream for as long as it stays open
 * (an event stream or a WebSocket refreshes `lastActivity` each interval), so the reaper
 * never deletes an instance a client is connected to. Writes happen beside the traffic,
 * never in its way; a failed write is logged and tried again by the next use.
 */
export class GatewayActivity {
  /** When this replica last wrote activity per instance, on top of the Pod's own mirror. */
  private readonly written = new Map<string, number>();
  private readonly writing = new Set<string>();
  private readonly streams = new Map<string, { open: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly instances: Instances,
    private readonly targets: Targets,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A proxied request for a running instance: writes activity when it is due. */
  noteRequest({ pod, record }: Target): void {
    if (!record) return;
    // The Pod's mirror can be a moment old (the lookup is cached): what this replica wrote
    // itself counts too.
    const written = new Date(this.written.get(record.name) ?? 0);
    const lastActivity =
      record.lastActivity && record.lastActivity > written ? record.lastActivity : written;
    // A phase change (the Pod running now) is written too, once per lookup's lifetime: the
    // Pod read may be a moment old, and this replica's own write is not in it yet.
    const phaseDue =
      isPhaseStale(record, pod) && this.now().getTime() - written.getTime() > TARGET_TTL_MS;
    if (phaseDue || isActivityDue({ ...record, lastActivity }, this.now(), this.intervalMs)) {
      this.write(record.name, pod);
    }
  }

  /** A proxied exchange that stays open; the returned function closes it. */
  open(name: string): () => void {
    let stream = this.streams.get(name);
    if (!stream) {
      const timer = setInterval(() => void this.refresh(name), this.intervalMs);
      timer.unref();
      stream = { open: 0, timer };
      this.streams.set(name, stream);
    }
    stream.open += 1;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const current = this.streams.get(name);
      if (!current) return;
      current.open -= 1;
      if (current.open === 0) {
        clearInterval(current.timer);
        this.streams.delete(name);
      }
    };
  }

  /** How many exchanges are open (tests read it through the gateway). */
  get openStreams(): number {
    let open = 0;
    for (const stream of this.streams.values()) open += stream.open;
    return open;
  }

  private async refresh(name: string): Promise<void> {
    const { target } = await this.targets.get(name).catch(() => ({ target: undefined }));
    if (target) this.write(name, target.pod);
  }

  private write(name: string, pod: V1Pod): void {
    if (this.writing.has(name)) return;
    this.writing.add(name);
    this.written.set(name, this.now().getTime());
    this.instances
      .recordActivity(pod)
      .catch((error: Error) => {
        // Not written: let the next use try again.
        this.written.delete(name);
        this.log.warn(
          { instance: name, err: { name: error.name, message: error.message } },
          "activity not recorded",
        );
      })
      .finally(() => {
        this.writing.delete(name);
        // Forget instances nobody has used for a while, so the map stays small.
        if (this.written.size > 10_000) this.written.clear();
      });
  }
}
