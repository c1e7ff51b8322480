/** What decides when an instance may be reaped; the same rule for the handler and the reaper. */
export interface ExpiryInput {
  createdAt: Date;
  /** Undefined when no client has touched the instance since it was created. */
  lastActivity: Date | undefined;
  /** Per-instance overrides from the ClientPod's spec. */
  idleTimeoutSeconds?: number | undefined;
  maxLifetimeSeconds?: number | undefined;
}

export interface ExpiryDefaults {
  idleTimeoutMs: number;
  maxLifetimeMs: number;
}

export interface Expiry {
  /** When the instance counts as idle: last activity (or creation) plus the idle timeout. */
  idleAt: Date;
  /** When the instance reaches its maximum lifetime, however active. */
  lifetimeEndsAt: Date;
  /** The earlier of the two: from then on the reaper may delete it. */
  expiresAt: Date;
  /** Which of the two `expiresAt` is; on a tie the lifetime, which the reaper applies first. */
  reason: "idle" | "max-lifetime";
}

export function expiryOf(input: ExpiryInput, defaults: ExpiryDefaults): Expiry {
  const idleMs =
    input.idleTimeoutSeconds !== undefined
      ? input.idleTimeoutSeconds * 1000
      : defaults.idleTimeoutMs;
  const lifetimeMs =
    input.maxLifetimeSeconds !== undefined
      ? input.maxLifetimeSeconds * 1000
      : defaults.maxLifetimeMs;
  const since = input.lastActivity ?? input.createdAt;
  const idleAt = new Date(since.getTime() + idleMs);
  const lifetimeEndsAt = new Date(input.createdAt.getTime() + lifetimeMs);
  const reason = lifetimeEndsAt <= idleAt ? "max-lifetime" : "idle";
  return { idleAt, lifetimeEndsAt, expiresAt: reason === "idle" ? idleAt : lifetimeEndsAt, reason };
}
