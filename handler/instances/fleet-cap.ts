import type { Kube } from "../../shared/kube/client.js";

/** The quota resource that counts instances (every ClientPod, pool members included). */
export const CLIENTPOD_QUOTA = "count/clientpods.gptme.ai";
/** How long a replica trusts what it read of the namespace's quotas. */
export const QUOTA_READ_MS = 60_000;

/**
 * Whether MAX_INSTANCES needs a count of the fleet: not when a quota of the namespace holds
 * ClientPods to it or fewer (the manifests keep the two equal), since the API server then
 * refuses a create past the cap itself, atomically across replicas.
 */
export const isCountNeeded = (quotaCap: number | undefined, maxInstances: number): boolean =>
  quotaCap === undefined || quotaCap > maxInstances;

/**
 * Decides, per replica, whether a new instance is counted against MAX_INSTANCES: counting
 * lists the fleet (its cost grows with it), so it is done only where no quota does the same
 * job. The quotas are read at most once per QUOTA_READ_MS; when they cannot be read (no
 * permission, say), new instances are counted.
 */
export class FleetCap {
  private decided: { at: number; countNeeded: Promise<boolean> } | undefined;

  constructor(
    private readonly kube: Kube,
    private readonly maxInstances: number,
    private readonly now: () => number = Date.now,
  ) {}

  countNeeded(): Promise<boolean> {
    const now = this.now();
    if (!this.decided || now - this.decided.at >= QUOTA_READ_MS) {
      const countNeeded = this.kube.quotas
        .hardCountOf(CLIENTPOD_QUOTA)
        .then((cap) => isCountNeeded(cap, this.maxInstances))
        .catch(() => true);
      this.decided = { at: now, countNeeded };
    }
    return this.decided.countNeeded;
  }
}
