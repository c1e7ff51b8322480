import type { V1Pod } from "@kubernetes/client-node";
import type { H3, H3Event } from "h3";
import { type HandlerConfig, revisionSettingsOf } from "../../shared/config/load.js";
import { currentTemplateOf } from "../../shared/config/plans.js";
import { type ClientPod, MANAGED_SELECTOR } from "../../shared/instance/clientpod.js";
import { isPoolName, podNameOf } from "../../shared/instance/parts.js";
import { hasPodEnded, ownerUidOf } from "../../shared/instance/pod-status.js";
import { podRevisionOf, revisionOf } from "../../shared/instance/revision.js";
import type { ListOptions, Page } from "../../shared/kube/calls.js";
import type { Kube } from "../../shared/kube/client.js";
import { joinByName } from "../../shared/kube/join.js";
import { requireAdmin } from "../identity/auth.js";
import { podsByName } from "./admin-paging.js";

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
    // The ClientPods and the Pods side by side, page by page, joined by name: only a few pages
    // of either are held, whatever the fleet's size. A Pod named otherwise than its instance
    // (adopted from the warm pool) is read by name.
    const plans = config.plans.current();
    // An instance's current template is its plan's (which may have changed since it was made).
    const templateOf = (cp: ClientPod) => currentTemplateOf(cp.spec, plans);
    const counts = new Map<string | null, { instances: number; outdated: number }>();
    // Every plan's template's current revision, then any other template an instance names.
    const current = await currentRevisions(kube, config, [
      plans.default.template,
      ...plans.all.map((plan) => plan.template),
    ]);
    let instances = 0;
    let outdated = 0;
    const batches = joinByName(
      pagesOf((options) => kube.clientPods.list(options)),
      pagesOf((options) => kube.pods.list(options)),
    );
    for await (const { left: clientPods, right: pods } of batches) {
      const byName = new Map(pods.map((pod) => [pod.metadata?.name ?? "", pod]));
      const adopted = await podsByName(
        kube,
        clientPods.map(podNameOf).filter((name) => !byName.has(name) && isPoolName(name)),
      );
      const templates = clientPods.map(templateOf).filter((t) => !current.has(t));
      for (const [name, revision] of await currentRevisions(kube, config, templates)) {
        current.set(name, revision);
      }
      for (const cp of clientPods) {
        const pod = byName.get(podNameOf(cp)) ?? adopted.get(podNameOf(cp));
        const view = revisionView(cp, pod, current.get(templateOf(cp)));
        const count = counts.get(view.revision) ?? { instances: 0, outdated: 0 };
        count.instances += 1;
        instances += 1;
        if (view.outdated) {
          count.outdated += 1;
          outdated += 1;
        }
        counts.set(view.revision, count);
      }
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
      instances,
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

/** The fleet's objects of one kind, a page at a time, in name order. */
async function* pagesOf<T>(list: (options: ListOptions) => Promise<Page<T>>): AsyncGenerator<T[]> {
  let token: string | undefined;
  do {
    const page = await list({ labelSelector: MANAGED_SELECTOR, limit: PAGE_SIZE, continue: token });
    yield page.items;
    token = page.continue;
  } while (token);
}
