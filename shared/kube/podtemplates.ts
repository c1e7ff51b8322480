import type { V1PodTemplate } from "@kubernetes/client-node";
import type { KubeCalls } from "./calls.js";
import { absentOn404 } from "./errors.js";

/** The PodTemplates instances are built from. */
export class PodTemplates {
  constructor(private readonly api: KubeCalls) {}

  async get(name: string): Promise<V1PodTemplate | undefined> {
    return this.api
      .read<V1PodTemplate>("podtemplates", this.api.corePath("podtemplates", name), false)
      .catch(absentOn404);
  }
}
