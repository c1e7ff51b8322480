import type { Logger } from "../../shared/log.js";
import type { Instances } from "../instances/instances.js";
import type { Target } from "./target.js";
import type { Targets } from "./targets.js";

/** Bounds the instances whose last write this replica remembers. */
const MAX_WRITTEN = 10_000;

/**
 * Use keeps an instance alive: every proxied request counts as activity (at most one write
 * per instance per interval), and so does every open stream for as long as it stays open
 * (an event stream or a WebSocket refreshes `lastActivity` each interval), so the reaper
 * never deletes an instance a client is connected to. Writes happen beside the traffic,
 * never in its way; a failed write is logged and tried again by the next use. The gateway
 * and the preview hosts share one, so their use of an instance is one.
 */
export class GatewayActivity {
  /** When this replica last wrote activity per instance (its Pod's name), on top of the Pod's own mirror. */
  private readonly written = new Map<string, number>();
  private readonly writing = new Set<string>();
  private readonly streams = new Map<string, { open: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly instances: Instances,
    private readonly targets: Targets,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A proxied request for a running instance: writes activity when it is due. */
  noteRequest({ podName, record, pod }: Target): void {
    // The Pod's mirror can be a moment old (the lookup is cached): what this replica wrote
    // itself counts too.
    const written = this.written.get(podName) ?? 0;
    const recorded = (record.lastActivity ?? record.createdAt).getTime();
    const now = this.now();
    // A phase change (the Pod running now) is written too, once per lookup's lifetime: the
    // Pod read may be a moment old, and this replica's own write is not in it yet.
    const phase = pod?.pod.status?.phase;
    const phaseDue = phase !== undefined && phase !== record.phase && now - written > 1_000;
    if (phaseDue || now - Math.max(recorded, written) >= this.intervalMs) this.write(podName, pod);
  }

  /** A proxied exchange that stays open (for its Pod's name); the returned function closes it. */
  open(podName: string): () => void {
    let stream = this.streams.get(podName);
    if (!stream) {
      const timer = setInterval(() => void this.refresh(podName), this.intervalMs);
      timer.unref();
      stream = { open: 0, timer };
      this.streams.set(podName, stream);
    }
    stream.open += 1;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const current = this.streams.get(podName);
      if (!current) return;
      current.open -= 1;
      if (current.open === 0) {
        clearInterval(current.timer);
        this.streams.delete(podName);
      }
    };
  }

  private async refresh(podName: string): Promise<void> {
    const lookup = await Promise.resolve(this.targets.get(podName)).catch(() => undefined);
    const pod = lookup?.target?.pod;
    if (pod && lookup.target?.podName === podName) this.write(podName, pod);
  }

  private write(podName: string, pod: Target["pod"]): void {
    if (!pod || this.writing.has(podName)) return;
    this.writing.add(podName);
    this.written.delete(podName);
    this.written.set(podName, this.now());
    if (this.written.size > MAX_WRITTEN) {
      const oldest = this.written.keys().next().value;
      if (oldest !== undefined) this.written.delete(oldest);
    }
    this.instances
      .recordActivity(pod.pod)
      .catch((error: Error) => {
        // Not written: let the next use try again.
        this.written.delete(podName);
        this.log.warn(
          { instance: podName, err: { name: error.name, message: error.message } },
          "activity not recorded",
        );
      })
      .finally(() => this.writing.delete(podName));
  }
}
