import { describe, expect, it } from "vitest";
import {
  core,
  eventually,
  expire,
  getInstance,
  k,
  NAMESPACE,
  NODE_NAME,
  podNameOf,
  readPod,
  runReaperJob,
} from "./support/fleet.js";

// The reaper exactly as an operator runs it by hand: a Job from the CronJob, its image and
// its ServiceAccount, against a real instance that has expired.
describe("the reaper on the real node", () => {
  it("runs from `kubectl create job --from=cronjob/fleet-reaper`, deletes an expired instance and completes", async () => {
    const { status, body } = await getInstance("e2e-reaper-key-00001", "reap-me", 0);
    expect(status, JSON.stringify(body)).toBeLessThan(300);
    const name: string = body.name;
    await expire(name);
    const { job, lines } = runReaperJob("reap-e2e");

    const pods = await core().listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: `job-name=${job}`,
    });
    const pod = pods.items[0];
    expect(pod?.spec?.nodeName).toBe(NODE_NAME);
    expect(pod?.spec?.serviceAccountName).toBe("fleet-reaper");
    const container = pod?.status?.containerStatuses?.[0];
    expect(container?.image).toBe("localhost/gptme-fleet/fleet-reaper:local");
    expect(container?.state?.terminated?.exitCode).toBe(0);

    // Its JSON lines: the delete of our instance, and a summary without failures.
    expect(lines.find((l) => l.msg === "reap" && l.name === name)).toMatchObject({
      reason: "idle",
      result: "deleted",
    });
    const summary = lines.find((l) => l.msg === "summary");
    expect(summary).toMatchObject({ failed: 0, dryRun: false });
    expect(summary.deleted).toBeGreaterThanOrEqual(1);

    expect(k(["get", "clientpod", name, "-n", NAMESPACE, "--ignore-not-found"])).toBe("");
    // Its Pod goes with it (garbage collection of the owned Pod).
    await eventually(
      async () => ((await readPod(podNameOf(body))) ? undefined : true),
      "the instance's pod to be deleted",
    );
    k(["delete", "job", job, "-n", NAMESPACE, "--wait=false"]);
  });
});
