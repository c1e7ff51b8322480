import { statusOf } from "../../shared/instance/status.js";
import type { ServingProbes } from "../instances/serving.js";
import type { Target, Targets } from "./targets.js";

/**
 * Holds a request for an instance whose own Pod is still starting until its gptme-server
 * answers, up to `holdMs` (GATEWAY_HOLD), rather than turn it away: every request held for
 * one Pod shares its poller, no API calls. True when it now serves (the targets know it).
 */
export async function holdUntilServing(
  starting: Target,
  serving: ServingProbes,
  targets: Targets,
  holdMs: number,
): Promise<boolean> {
  const pod = await serving.waitUntilServing(starting.pod, Date.now() + holdMs);
  if (!pod || statusOf(pod) !== "ready") return false;
  targets.remember(pod.metadata?.name ?? "", pod);
  return true;
}
