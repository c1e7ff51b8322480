import { type ArgsDef, parseArgs } from "citty";
import { parseDurationMs } from "../shared/config/duration.js";
import {
  ConfigError,
  defaultSources,
  loadFleetConfig,
  loadPlans,
  loadRolloutConfig,
  type Plans,
  type RolloutConfig,
} from "../shared/config/load.js";

const DEFAULT_CONCURRENCY = 10;
const DEFAULT_MAX_ROLLOUT = 10;
const MAX_MAX_ROLLOUT = 10_000;
const MAX_CONCURRENCY = 100;
/** Long enough for a loaded gptme-server (it answers both paths in milliseconds when idle). */
const DEFAULT_PROBE_TIMEOUT_MS = 2_000;

export const args = {
  "dry-run": { type: "boolean", description: "Report what would be deleted; change nothing." },
  namespace: {
    type: "string",
    valueHint: "NS",
    description: "Namespace of the fleet (default: NAMESPACE).",
  },
  "idle-timeout": {
    type: "string",
    valueHint: "D",
    description: "Idle time before deletion (default: IDLE_TIMEOUT, 30m).",
  },
  "max-lifetime": {
    type: "string",
    valueHint: "D",
    description: "Age before deletion (default: MAX_LIFETIME, 24h).",
  },
  "workspace-retention": {
    type: "string",
    valueHint: "D",
    description:
      "Delete a workspace no instance has used this long (default: WORKSPACE_RETENTION, 30d).",
  },
  concurrency: {
    type: "string",
    valueHint: "N",
    description: `Deletes (and probes) in flight at once (default: ${DEFAULT_CONCURRENCY}).`,
  },
  "probe-timeout": {
    type: "string",
    valueHint: "D",
    description: "How long an idle instance's gptme-server has to say it is working (default: 2s).",
  },
  probe: {
    type: "boolean",
    default: true,
    negativeDescription: "Delete idle instances without asking their gptme-server.",
    description: "Ask an idle instance's gptme-server whether it is working before deleting it.",
  },
  "time-limit": {
    type: "string",
    valueHint: "D",
    description:
      "Start no new work after this long: the rest waits for the next pass (default: none; the CronJob sets one below its deadline).",
  },
  "max-rollout": {
    type: "string",
    valueHint: "N",
    description: `Pods of outdated instances replaced at most per pass (default: ${DEFAULT_MAX_ROLLOUT}; ROLLOUT=off disables).`,
  },
  version: { type: "boolean", description: "Print the version and exit." },
  help: { type: "boolean", description: "Show this help." },
} satisfies ArgsDef;

export const command = {
  meta: {
    name: "fleet-reaper",
    description:
      "One pass over the fleet: deletes instances idle or older than their timeouts, then exits.",
  },
  args,
};

export interface ReaperSettings {
  dryRun: boolean;
  namespace: string;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  workspaceRetentionMs: number;
  concurrency: number;
  /** --time-limit; undefined: none. */
  timeLimitMs: number | undefined;
  /** Undefined with --no-probe. */
  probeTimeoutMs: number | undefined;
  /** Undefined with ROLLOUT=off. */
  rollout: (Omit<RolloutConfig, "enabled"> & { max: number }) | undefined;
  logLevel: string;
  /** The plans (PLANS_FILE, else one plan from POOL_SIZE and POD_TEMPLATE): each keeps its pool. */
  plans: Plans;
  /** Every plan's pool together: the pass keeps this many members (0: no pool). */
  poolSize: number;
}

/** Flags override the environment; anything unusable is a ConfigError naming the flag. */
export function settingsFrom(argv: string[], sources = defaultSources()): ReaperSettings {
  const parsed = parseArgs<typeof args>(argv, args);
  const known = new Set([
    "_",
    ...Object.keys(args),
    "dryRun",
    "idleTimeout",
    "maxLifetime",
    "probeTimeout",
    "workspaceRetention",
    "maxRollout",
    "timeLimit",
  ]);
  const unknown = Object.keys(parsed).find((key) => !known.has(key));
  if (unknown) throw new ConfigError(`--${unknown}: unknown flag (see --help)`);
  if (parsed._.length > 0)
    throw new ConfigError(`${parsed._[0]}: unexpected argument (see --help)`);

  if (parsed.namespace === "") throw new ConfigError("--namespace: expected a namespace name");
  let fleet: ReturnType<typeof loadFleetConfig>;
  try {
    const namespace = parsed.namespace !== undefined ? { NAMESPACE: parsed.namespace } : {};
    fleet = loadFleetConfig({ ...sources, env: { ...sources.env, ...namespace } });
  } catch (error) {
    // Name the flag, not the variable: the flag is what the user typed.
    if (parsed.namespace !== undefined && (error as Error).message.startsWith("NAMESPACE:")) {
      throw new ConfigError((error as Error).message.replace(/^NAMESPACE/, "--namespace"));
    }
    throw error;
  }
  const duration = (flag: string, value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    const ms = parseDurationMs(value);
    if (ms === undefined)
      throw new ConfigError(`--${flag}: expected a duration such as 90, 90s, 15m, 2h or 1h30m`);
    return ms;
  };
  let concurrency = DEFAULT_CONCURRENCY;
  if (parsed.concurrency !== undefined) {
    concurrency = Number(parsed.concurrency);
    if (!/^\d+$/.test(parsed.concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new ConfigError(`--concurrency: expected a whole number from 1 to ${MAX_CONCURRENCY}`);
    }
  }
  let maxRollout = DEFAULT_MAX_ROLLOUT;
  if (parsed["max-rollout"] !== undefined) {
    maxRollout = Number(parsed["max-rollout"]);
    if (!/^\d+$/.test(parsed["max-rollout"]) || maxRollout > MAX_MAX_ROLLOUT) {
      throw new ConfigError(`--max-rollout: expected a whole number from 0 to ${MAX_MAX_ROLLOUT}`);
    }
  }
  const rollout = loadRolloutConfig(sources);
  const plans = loadPlans({
    ...sources,
    env: { ...sources.env, NAMESPACE: fleet.namespace },
  }).current();
  const probeTimeoutMs = duration(
    "probe-timeout",
    parsed["probe-timeout"],
    DEFAULT_PROBE_TIMEOUT_MS,
  );
  if (probeTimeoutMs <= 0) throw new ConfigError("--probe-timeout: expected a duration above 0");
  const workspaceRetentionMs = duration(
    "workspace-retention",
    parsed["workspace-retention"],
    fleet.workspaceRetentionMs,
  );
  if (workspaceRetentionMs < 1_000)
    throw new ConfigError("--workspace-retention: must be at least 1s");
  const timeLimitMs =
    parsed["time-limit"] === undefined
      ? undefined
      : duration("time-limit", parsed["time-limit"], 0);
  if (timeLimitMs !== undefined && timeLimitMs < 1_000)
    throw new ConfigError("--time-limit: must be at least 1s");
  return {
    dryRun: Boolean(parsed["dry-run"]),
    namespace: fleet.namespace,
    idleTimeoutMs: duration("idle-timeout", parsed["idle-timeout"], fleet.idleTimeoutMs),
    maxLifetimeMs: duration("max-lifetime", parsed["max-lifetime"], fleet.maxLifetimeMs),
    workspaceRetentionMs,
    concurrency,
    timeLimitMs,
    probeTimeoutMs: parsed.probe === false ? undefined : probeTimeoutMs,
    rollout:
      rollout.enabled && maxRollout > 0
        ? { idleMs: rollout.idleMs, revision: rollout.revision, max: maxRollout }
        : undefined,
    logLevel: fleet.logLevel,
    plans,
    poolSize: plans.poolSize,
  };
}
