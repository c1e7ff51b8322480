import type { V1PodTemplate } from "@kubernetes/client-node";
import type { KubeCalls } from "./calls.js";
import { absentOn404 } from "./errors.js";

/** The PodTemplates instances are built from. */
export class PodTemplates {
  constructor(private readonly api: KubeCalls) {}

  async get(name: string): Promise<V1PodTemplate | undefined> {
    return this.api
      .call("get", "podtemplates", () =>
        this.api.core.readNamespacedPodTemplate({ name, namespace: this.api.namespace }),
      )
      .catch(absentOn404);
  }
}
