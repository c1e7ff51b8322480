import { load as loadYaml } from "js-yaml";
import { z } from "zod";
import { DEFAULT_PLAN } from "../instance/clientpod.js";
import { ConfigError } from "./error.js";
import type { FileFormat } from "./reloading-file.js";
import { duration, quantity } from "./values.js";

// Plans: what a client's instances get (template, limits, timeouts, workspace size, warm
// pool), named in PLANS_FILE, or one plan `default` made from the fleet-wide variables.

export { DEFAULT_PLAN };

/**
 * A plan's name: it becomes a label value (`gptme.ai/plan`) and a metric label, and follows
 * a key on its API_KEYS_FILE line, so it is a label value of at most 63 characters.
 */
export const PLAN_NAME = /^[A-Za-z0-9]([-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface Plan {
  name: string;
  /** The PodTemplate (in the fleet's namespace) its instances' Pods are made from. */
  template: string;
  maxInstancesPerClient: number;
  /**
   * Set in PLANS_FILE: recorded on each instance at creation. Left out (and without
   * PLANS_FILE): undefined, and the fleet-wide IDLE_TIMEOUT / MAX_LIFETIME apply as they are
   * when the reaper decides, as they did before plans.
   */
  idleTimeoutMs: number | undefined;
  maxLifetimeMs: number | undefined;
  /** A new workspace claim's size (a Kubernetes quantity). */
  workspaceSize: string;
  /** Started instances of this plan kept for its new clients (0: none). */
  poolSize: number;
}

/**
 * What a plan's left-out fields are: the fleet-wide variables (timeouts aside: left out, they
 * stay the fleet-wide ones, applied when the reaper decides).
 */
export type PlanDefaults = Omit<Plan, "name" | "idleTimeoutMs" | "maxLifetimeMs">;

/** The plans in use: look one up by name; a client without one has the default. */
export class Plans {
  private readonly byName: ReadonlyMap<string, Plan>;

  constructor(
    readonly defaultName: string,
    plans: readonly Plan[],
  ) {
    this.byName = new Map(plans.map((plan) => [plan.name, plan]));
    if (!this.byName.has(defaultName)) throw new Error(`no plan ${defaultName}`);
  }

  /** The plan called `name` (none given: the default); undefined when there is none. */
  get(name: string | undefined): Plan | undefined {
    return this.byName.get(name ?? this.defaultName);
  }

  get default(): Plan {
    return this.byName.get(this.defaultName) as Plan;
  }

  get all(): Plan[] {
    return [...this.byName.values()];
  }

  get size(): number {
    return this.byName.size;
  }

  /** Members of every plan's pool together: they all count against MAX_INSTANCES. */
  get poolSize(): number {
    return this.all.reduce((sum, plan) => sum + plan.poolSize, 0);
  }
}

/**
 * What an instance records of its plan at creation (ClientPod spec), so the reaper needs no
 * plans: its name, and the timeouts the plan sets (undefined: the fleet-wide ones).
 */
export interface PlanRecord {
  name: string;
  idleTimeoutSeconds: number | undefined;
  maxLifetimeSeconds: number | undefined;
}

const seconds = (ms: number | undefined) =>
  ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));

export const planRecordOf = (plan: Plan): PlanRecord => ({
  name: plan.name,
  idleTimeoutSeconds: seconds(plan.idleTimeoutMs),
  maxLifetimeSeconds: seconds(plan.maxLifetimeMs),
});

/**
 * The PodTemplate an instance's Pod is made from now: its plan's (which PLANS_FILE may have
 * changed since), else the one it was made from (an instance from before plans, or of a plan
 * no longer offered). The handler starts Pods from it; the reaper and admin compare revisions
 * against it.
 */
export function currentTemplateOf(
  spec: { plan?: string | undefined; podTemplate: string },
  plans: Plans,
): string {
  return (spec.plan !== undefined && plans.get(spec.plan)?.template) || spec.podTemplate;
}

/** Without PLANS_FILE: one plan, `default`, made from the fleet-wide variables. */
export const defaultPlans = (defaults: PlanDefaults): Plans =>
  new Plans(DEFAULT_PLAN, [
    { name: DEFAULT_PLAN, ...defaults, idleTimeoutMs: undefined, maxLifetimeMs: undefined },
  ]);

// YAML gives numbers for `90` and strings for `90s`: both are read as the variables are.
const text = z.union([z.string(), z.number()]).transform(String);

const planSchema = z.strictObject({
  template: z.string({ error: "expected a PodTemplate name" }).regex(DNS_SUBDOMAIN, {
    error: "expected a PodTemplate name",
  }),
  maxInstancesPerClient: z
    .number({ error: "expected a whole number of at least 1" })
    .int({ error: "expected a whole number of at least 1" })
    .min(1, { error: "expected a whole number of at least 1" })
    .optional(),
  idleTimeout: text.pipe(duration()).optional(),
  maxLifetime: text.pipe(duration()).optional(),
  workspaceSize: text.pipe(quantity).optional(),
  poolSize: z
    .number({ error: "expected a whole number (0 or more)" })
    .int({ error: "expected a whole number (0 or more)" })
    .min(0, { error: "expected a whole number (0 or more)" })
    .max(1000, { error: "must be at most 1000" })
    .optional(),
});

const fileSchema = z.strictObject({
  default: z.string({ error: "expected the name of a plan" }).optional(),
  plans: z.record(z.string(), planSchema, { error: "expected a map of plan names to plans" }),
});

export interface PlansFileOptions {
  /** The file's path, named in every error with the variable. */
  path: string;
  defaults: PlanDefaults;
  /** MAX_INSTANCES: every plan's pool members together must stay below it. */
  maxInstances: number;
}

/**
 * PLANS_FILE's format:
 *
 * ```yaml
 * default: free
 * plans:
 *   free: {template: gptme-client, maxInstancesPerClient: 1, idleTimeout: 15m, poolSize: 2}
 *   pro:  {template: gptme-client-pro, workspaceSize: 10Gi}
 * ```
 *
 * Every field but `template` may be left out (the fleet-wide variable applies); `default`
 * may be left out when a plan is called `default`. An error is one line naming the variable,
 * the file and the field.
 */
export function plansFormat(options: PlansFileOptions): FileFormat<Plans> {
  return { parse: (text) => parsePlans(text, options), entries: (plans) => plans.size };
}

export function parsePlans(
  text: string,
  { path, defaults, maxInstances }: PlansFileOptions,
): Plans {
  const fail = (message: string) => new ConfigError(`PLANS_FILE: ${path}: ${message}`);
  let document: unknown;
  try {
    // js-yaml (the YAML 1.2 core schema), as the kubeconfig is read.
    document = loadYaml(text);
  } catch (error) {
    const { reason, mark } = error as { reason?: string; mark?: { line: number } };
    throw fail(reason && mark ? `not YAML (line ${mark.line + 1}: ${reason})` : "not YAML");
  }
  // Nothing (or only comments), or a lone false, 0 or "".
  if (!document) throw fail("empty, expected plans:");
  const result = fileSchema.safeParse(document);
  if (!result.success) {
    // A misspelt field first: it is why the right one looks missing.
    const { issues } = result.error;
    const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
    const field = issue?.path.join(".") || "the file";
    const message =
      issue?.code === "unrecognized_keys"
        ? `unknown field ${issue.keys.map((k) => (field === "the file" ? k : `${field}.${k}`)).join(", ")}`
        : `${field}: ${issue?.message ?? "invalid"}`;
    throw fail(message);
  }
  const names = Object.keys(result.data.plans);
  if (names.length === 0) throw fail("plans: name at least one plan");
  const badName = names.find((name) => !PLAN_NAME.test(name));
  if (badName !== undefined) {
    throw fail(
      `plans.${badName}: a plan's name is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    );
  }
  const defaultName = result.data.default ?? DEFAULT_PLAN;
  if (!names.includes(defaultName)) {
    throw fail(
      result.data.default === undefined
        ? "default: name the plan of clients without one (no plan is called default)"
        : `default: ${defaultName} is not one of the plans`,
    );
  }
  const plans = Object.entries(result.data.plans).map(([name, plan]) => ({
    name,
    template: plan.template,
    maxInstancesPerClient: plan.maxInstancesPerClient ?? defaults.maxInstancesPerClient,
    idleTimeoutMs: plan.idleTimeout,
    maxLifetimeMs: plan.maxLifetime,
    workspaceSize: plan.workspaceSize ?? defaults.workspaceSize,
    poolSize: plan.poolSize ?? defaults.poolSize,
  }));
  const parsed = new Plans(defaultName, plans);
  if (parsed.poolSize >= maxInstances) {
    throw fail(
      `plans.*.poolSize: the pools together (${parsed.poolSize}) must be less than MAX_INSTANCES (${maxInstances}): members count against it`,
    );
  }
  return parsed;
}
