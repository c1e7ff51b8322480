import { z } from "zod";
import type { RevisionSettings } from "../instance/revision.js";
import { type ConfigSources, defaultSources, parseEnv } from "./sources.js";
import { duration, quantity } from "./values.js";

/** What the fleet adds to every instance's Pod: part of its revision (handler and reaper). */
export const podEnv = {
  DEFAULT_CPU_LIMIT: quantity.default("1"),
  DEFAULT_MEMORY_LIMIT: quantity.default("1Gi"),
  WORKSPACES: z.enum(["on", "off"], { error: "expected on or off" }).default("on"),
};

const rolloutEnv = {
  ...podEnv,
  ROLLOUT: z.enum(["idle", "off"], { error: "expected idle or off" }).default("idle"),
  ROLLOUT_IDLE: duration().prefault("10m"),
};

/** The reaper's rollout of outdated instances. */
export interface RolloutConfig {
  /** false: ROLLOUT=off. */
  enabled: boolean;
  /** How long an outdated instance must have been idle before its Pod is replaced. */
  idleMs: number;
  /** What the fleet adds to the template, so the reaper computes the revision the handler does. */
  revision: RevisionSettings;
}

export function loadRolloutConfig(sources: ConfigSources = defaultSources()): RolloutConfig {
  const env = parseEnv(rolloutEnv, sources.env);
  return {
    enabled: env.ROLLOUT === "idle",
    idleMs: env.ROLLOUT_IDLE,
    revision: {
      defaultCpuLimit: env.DEFAULT_CPU_LIMIT,
      defaultMemoryLimit: env.DEFAULT_MEMORY_LIMIT,
      workspaces: env.WORKSPACES === "on",
    },
  };
}
