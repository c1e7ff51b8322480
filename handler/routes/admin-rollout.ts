import type { V1Pod } from "@kubernetes/client-node";
import type { H3, H3Event } from "h3";
import { type HandlerConfig, revisionSettingsOf } from "../../shared/config/load.js";
import { currentTemplateOf } from "../../shared/config/plans.js";
import { type ClientPod, MANAGED_SELECTOR } from "../../shared/instance/clientpod.js";
import { hasPodEnded, ownerUidOf } from "../../shared/instance/pod-status.js";
import { podRevisionOf, revisionOf } from "../../shared/instance/revision.js";
import type { Kube } from "../../shared/kube/client.js";
import { requireAdmin } from "../identity/auth.js";

/** Objects per list call when the rollout reads the whole fleet. */
const PAGE_SIZE = 500;

/** Which revision an instance runs, and whether a newer one exists. */
export interface RevisionView {
  /** Its Pod's revision; without a Pod, the one last started; null: made before revisions. */
  revision: string | null;
  /** Its Pod runs an older revision than its template gives now (the reaper will replace it). */
  outdated: boolean;
}

/** The current revision of each template named, computed as the handler starts Pods. */
export async function currentRevisions(
  kube: Kube,
  config: HandlerConfig,
  templates: Iterable<string>,
): Promise<Map<string, string | undefined>> {
  const settings = revisionSettingsOf(config);
  const names = [...new Set(templates)];
  const revisions = await Promise.all(
    names.map(async (name) => {
      const template = await kube.podTemplates.get(name);
      return template && revisionOf(template, settings);
    }),
  );
  return new Map(names.map((name, i) => [name, revisions[i]]));
}

/**
 * An instance's revision from its own Pod (what runs), else its ClientPod's record. Only a
 * running Pod can be outdated: a missing one is started from the current template by the
 * next request. With its template gone there is no current revision, and nothing to roll.
 */
export function revisionView(
  cp: ClientPod,
  pod: V1Pod | undefined,
  current?: string,
): RevisionView {
  const own = pod && ownerUidOf(pod) === cp.metadata.uid && !hasPodEnded(pod) ? pod : undefined;
  const revision = own ? (podRevisionOf(own) ?? null) : (cp.status?.revision ?? null);
  return { revision, outdated: Boolean(own && current !== undefined && revision !== current) };
}

/** `GET /admin/rollout`: how many instances run each revision, and which is current. */
export function adminRolloutRoutes(app: H3, config: HandlerConfig, kube: Kube): void {
  app.get("/admin/rollout", async (event: H3Event) => {
    requireAdmin(event.req.headers.get("authorization"), config);
    // Pods first, then ClientPods: every Pod read has its ClientPod in the later read.
    const pods = new Map<string, V1Pod>();
    let token: string | undefined;
    do {
      const page = await kube.pods.list({
        labelSelector: MANAGED_SELECTOR,
        limit: PAGE_SIZE,
        continue: token,
      });
      for (const pod of page.items) pods.set(pod.metadata?.name ?? "", pod);
      token = page.continue;
    } while (token);
    const clientPods: ClientPod[] = [];
    do {
      const page = await kube.clientPods.list({
        labelSelector: MANAGED_SELECTOR,
        limit: PAGE_SIZE,
        continue: token,
      });
      clientPods.push(...page.items);
      token = page.continue;
    } while (token);

    const plans = config.plans.current();
    const templateOf = (cp: ClientPod) => currentTemplateOf(cp.spec, plans);
    const current = await currentRevisions(kube, config, [
      plans.default.template,
      ...plans.all.map((plan) => plan.template),
      ...clientPods.map(templateOf),
    ]);
    const counts = new Map<string | null, { instances: number; outdated: number }>();
    let outdated = 0;
    for (const cp of clientPods) {
      const view = revisionView(cp, pods.get(cp.metadata.name), current.get(templateOf(cp)));
      const count = counts.get(view.revision) ?? { instances: 0, outdated: 0 };
      count.instances += 1;
      if (view.outdated) {
        count.outdated += 1;
        outdated += 1;
      }
      counts.set(view.revision, count);
    }
    // The default plan's first (the fleet's template without PLANS_FILE), then every plan's.
    const currentRevision = current.get(plans.default.template) ?? null;
    const currents = new Set(plans.all.map((plan) => current.get(plan.template)));
    return {
      template: plans.default.template,
      current: currentRevision,
      plans: plans.all.map((plan) => ({
        plan: plan.name,
        template: plan.template,
        current: current.get(plan.template) ?? null,
      })),
      instances: clientPods.length,
      outdated,
      revisions: [...counts]
        .map(([revision, count]) => ({
          revision,
          current: revision !== null && currents.has(revision),
          ...count,
        }))
        .sort((a, b) => b.instances - a.instances),
    };
  });
}
