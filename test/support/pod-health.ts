import { CoreV1Api } from "@kubernetes/client-node";
import { answerPodHealth as answer, type PodHealth } from "../../scripts/lib/pod-health.js";
import { adminKubeConfig } from "./cluster.js";

export type { PodHealth };

/** scripts/lib/pod-health.ts against the test cluster. */
export const answerPodHealth = (namespace: string, options?: { delayMs?: number }): PodHealth =>
  answer(adminKubeConfig().makeApiClient(CoreV1Api), namespace, options);
