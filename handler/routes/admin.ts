import type { V1Pod } from "@kubernetes/client-node";
import { getRouterParam, type H3, type H3Event } from "h3";
import { z } from "zod";
import type { HandlerConfig } from "../../shared/config/load.js";
import { currentTemplateOf, PLAN_NAME } from "../../shared/config/plans.js";
import type { ClientPod } from "../../shared/instance/clientpod.js";
import { expiryOf } from "../../shared/instance/expiry.js";
import { POD_NAME, podNameOf } from "../../shared/instance/parts.js";
import { recordOf } from "../../shared/instance/record.js";
import type { Kube } from "../../shared/kube/client.js";
import { isPoolMember } from "../../shared/pool/member.js";
import { FleetError } from "../errors/fleet-error.js";
import { requireAdmin } from "../identity/auth.js";
import { endpointOf, type InstanceBody, instanceBody } from "../instances/body.js";
import type { Instances } from "../instances/instances.js";
import { expiredToken, pageOptions, pageQuery, parseQuery, podsByName } from "./admin-paging.js";
import { currentRevisions, type RevisionView, revisionView } from "./admin-rollout.js";
import { purgeOf } from "./purge.js";

export interface AdminItem extends InstanceBody, RevisionView {
  clientId: string;
  podPhase: string | null;
  /** A warm-pool member: started, no client yet (its clientId is a placeholder). */
  pool: boolean;
}

/** One instance, with why it is alive: what it expires for, and the reaper's last word on it. */
export interface AdminDetail extends AdminItem {
  expiryReason: "idle" | "max-lifetime";
  lastReap: { at: string; verdict: string; detail: string | null } | null;
}

const listQuery = pageQuery.extend({
  status: z.enum(["starting", "ready", "failed", "terminating"]).optional(),
  outdated: z.enum(["true", "false"], "outdated is true or false").optional(),
  plan: z.string().regex(PLAN_NAME, "plan is a plan's name").optional(),
});

const INSTANCE_NAME = POD_NAME;

/** The admin API: every instance of every client, behind the admin token. */
export function adminRoutes(
  app: H3,
  config: HandlerConfig,
  kube: Kube,
  instances: Instances,
): void {
  const admin = (event: H3Event) => requireAdmin(event.req.headers.get("authorization"), config);

  app.get("/admin/pods", async (event) => {
    admin(event);
    const query = parseQuery(listQuery, event);
    // One page of ClientPods straight from the API server, then each one's Pod by name from
    // the cache, then the template (its current revision): whatever the fleet's size.
    const page = await kube.clientPods.list(pageOptions(query, query.plan)).catch(expiredToken);
    const pods = await podsByName(kube, page.items.map(podNameOf));
    // An instance's current template is its plan's (which may have changed since it was made).
    const plans = config.plans.current();
    const templateOf = (cp: ClientPod) => currentTemplateOf(cp.spec, plans);
    const current = await currentRevisions(kube, config, page.items.map(templateOf));
    const items = page.items
      .map((cp) => adminItem(cp, pods.get(podNameOf(cp)), config, current.get(templateOf(cp))))
      .filter((item) => !query.status || item.status === query.status)
      .filter((item) => !query.outdated || String(item.outdated) === query.outdated);
    // "" on the last page, as the API server itself says it.
    return { items, continue: page.continue ?? "" };
  });

  app.get("/admin/pods/:name", async (event) => {
    admin(event);
    const name = nameOf(event);
    const clientPod = await kube.clientPods.get(name);
    if (!clientPod) throw notFound(name);
    const pod = await kube.pods.get(podNameOf(clientPod));
    const template = currentTemplateOf(clientPod.spec, config.plans.current());
    const current = await currentRevisions(kube, config, [template]);
    return adminDetail(clientPod, pod, config, current.get(template));
  });

  app.delete("/admin/pods/:name", async (event) => {
    admin(event);
    const name = nameOf(event);
    const removed = await instances.remove(name, { purge: purgeOf(event) });
    if (!removed) throw notFound(name);
    return { name, deleted: true, workspace: removed.workspace };
  });
}

function adminItem(
  cp: ClientPod,
  pod: V1Pod | undefined,
  config: HandlerConfig,
  currentRevision: string | undefined,
): AdminItem {
  const terminating = Boolean(cp.metadata.deletionTimestamp);
  const record = recordOf(cp);
  // Admin views show where an instance is reached, never its token.
  const endpoint = endpointOf(record, config.gateway.publicUrl, undefined);
  return {
    ...instanceBody(record, pod, false, config, endpoint, terminating),
    clientId: cp.spec.clientId,
    podPhase: pod?.status?.phase ?? null,
    pool: isPoolMember(cp),
    ...revisionView(cp, pod, currentRevision),
  };
}

function adminDetail(
  cp: ClientPod,
  pod: V1Pod | undefined,
  config: HandlerConfig,
  currentRevision: string | undefined,
): AdminDetail {
  const lastReap = cp.status?.lastReap;
  return {
    ...adminItem(cp, pod, config, currentRevision),
    expiryReason: expiryOf(recordOf(cp), config).reason,
    lastReap: lastReap
      ? {
          at: lastReap.at.toISOString(),
          verdict: lastReap.verdict,
          detail: lastReap.detail ?? null,
        }
      : null,
  };
}

/** The list options of one page the admin asked for: the fleet's objects, or one client's. */
function nameOf(event: H3Event): string {
  const name = getRouterParam(event, "name") ?? "";
  // Anything that is not an instance name cannot name an instance.
  if (!INSTANCE_NAME.test(name)) throw notFound(name);
  event.context.instanceName = name;
  return name;
}

function notFound(name: string) {
  const shown = INSTANCE_NAME.test(name) ? `"${name}"` : "of that name";
  return new FleetError("not_found", `There is no instance ${shown}.`);
}
