import type { V1PodTemplate } from "@kubernetes/client-node";
import type { Kube } from "../../shared/kube/client.js";
import { FleetError } from "../errors/fleet-error.js";

/**
 * How long a replica reuses a PodTemplate it read for new Pods. Templates change on a rollout,
 * rarely; a Pod started within this of a change is made from the template before, and the
 * reaper's rollout replaces it once idle, as it does every Pod of an older revision.
 */
export const TEMPLATE_TTL_MS = 2_000;

/**
 * The PodTemplates Pods are made from, each read at most once per TEMPLATE_TTL_MS per replica:
 * a burst of new instances costs one read, not one each. A missing template is never kept.
 */
export class Templates {
  private readonly read = new Map<string, { at: number; template: Promise<V1PodTemplate> }>();

  constructor(
    private readonly kube: Kube,
    private readonly now: () => number = Date.now,
  ) {}

  /** The template of that name; missing: 500 template_not_found, and nothing is created. */
  of(name: string): Promise<V1PodTemplate> {
    const now = this.now();
    const known = this.read.get(name);
    if (known && now - known.at < TEMPLATE_TTL_MS) return known.template;
    const template = this.kube.podTemplates.get(name).then((found) => {
      if (found) return found;
      throw new FleetError(
        "template_not_found",
        `The PodTemplate "${name}" does not exist in the fleet's namespace.`,
      );
    });
    // A failed read (missing, or the API server unavailable) is not reused.
    template.catch(() => {
      if (this.read.get(name)?.template === template) this.read.delete(name);
    });
    this.read.set(name, { at: now, template });
    return template;
  }
}
