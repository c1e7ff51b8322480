import { describe, expect, it } from "vitest";
import { KubeApiError, KubeUnavailableError } from "../../shared/kube/client.js";
import { answerOf } from "../errors/answer.js";
import { FleetError } from "../errors/fleet-error.js";
import { createRefused, podRefused } from "./refusals.js";

// The API server's own messages (Kubernetes 1.36), as the quota admission plugin writes them.
const exceeded = new KubeApiError(
  403,
  "Forbidden",
  'clientpods.gptme.ai "gptme-client-1" is forbidden: exceeded quota: fleet-instances, requested: count/clientpods.gptme.ai=1, used: count/clientpods.gptme.ai=200, limited: count/clientpods.gptme.ai=200',
);
const uncounted = new KubeApiError(
  403,
  "Forbidden",
  'clientpods.gptme.ai "gptme-client-1" is forbidden: status unknown for quota: fleet-instances, resources: count/clientpods.gptme.ai',
);
const podSecurity = new KubeApiError(
  403,
  "Forbidden",
  'pods "gptme-client-1" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true',
);

const thrownBy = (refused: (error: unknown) => never, error: unknown): unknown => {
  try {
    refused(error);
  } catch (thrown) {
    return thrown;
  }
};

describe("refused creates", () => {
  it("answer a ResourceQuota over its cap as 503 fleet_full with Retry-After", () => {
    for (const refused of [createRefused, podRefused]) {
      const thrown = thrownBy(refused, exceeded) as FleetError;
      expect(thrown).toBeInstanceOf(FleetError);
      const answer = answerOf(thrown);
      expect(answer.status).toBe(503);
      expect(answer.body.code).toBe("fleet_full");
      expect(answer.headers["retry-after"]).toBe("30");
    }
  });

  it("answer a ResourceQuota not counted yet as the API server being unavailable", () => {
    for (const refused of [createRefused, podRefused]) {
      expect(thrownBy(refused, uncounted)).toBeInstanceOf(KubeUnavailableError);
    }
  });

  it("answer a Pod refused by admission as 500 pod_rejected, and pass anything else on", () => {
    const { status, body } = answerOf(thrownBy(podRefused, podSecurity) as FleetError);
    expect([status, body.code]).toEqual([500, "pod_rejected"]);
    expect(thrownBy(createRefused, podSecurity)).toBe(podSecurity);
    const conflict = new KubeApiError(409, "AlreadyExists", "exists");
    expect(thrownBy(podRefused, conflict)).toBe(conflict);
  });
});
