import { describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { ConfigError, loadHandlerConfig, loadPlans } from "./load.js";
import {
  currentTemplateOf,
  type PlanDefaults,
  parsePlans,
  planRecordOf,
  plansFormat,
} from "./plans.js";
import { ReloadingFile } from "./reloading-file.js";

const defaults: PlanDefaults = {
  template: "gptme-client",
  maxInstancesPerClient: 5,
  workspaceSize: "1Gi",
  poolSize: 0,
};
const options = { path: "/etc/fleet/plans.yaml", defaults, maxInstances: 200 };
const parse = (text: string) => parsePlans(text, options);
const refusal = (text: string) => {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected the plans to be refused");
};

const CONTRACT_EXAMPLE = `
default: free
plans:
  free: {template: gptme-client, maxInstancesPerClient: 1, idleTimeout: 15m, maxLifetime: 8h, workspaceSize: 1Gi, poolSize: 2}
  pro:  {template: gptme-client-pro, maxInstancesPerClient: 5, idleTimeout: 2h, maxLifetime: 24h, workspaceSize: 10Gi, poolSize: 1}
`;

describe("parsePlans", () => {
  it("reads the contract's example", () => {
    const plans = parse(CONTRACT_EXAMPLE);
    expect(plans.defaultName).toBe("free");
    expect(plans.get(undefined)).toBe(plans.default);
    expect(plans.get("free")).toEqual({
      name: "free",
      template: "gptme-client",
      maxInstancesPerClient: 1,
      idleTimeoutMs: 15 * 60_000,
      maxLifetimeMs: 8 * 3600_000,
      workspaceSize: "1Gi",
      poolSize: 2,
    });
    expect(plans.get("pro")).toMatchObject({
      template: "gptme-client-pro",
      idleTimeoutMs: 2 * 3600_000,
      workspaceSize: "10Gi",
      poolSize: 1,
    });
    expect(plans.get("enterprise")).toBeUndefined();
    expect(plans.all.map((p) => p.name)).toEqual(["free", "pro"]);
    expect(plans.size).toBe(2);
    expect(plans.poolSize).toBe(3);
  });

  it("gives left-out fields the fleet-wide values (timeouts: none of its own), and reads bare numbers as the variables do", () => {
    const plans = parse(
      "plans:\n  default: {template: t1}\n  big: {template: t2, idleTimeout: 90, workspaceSize: 2147483648}\n",
    );
    expect(plans.defaultName).toBe("default");
    expect(plans.get("default")).toEqual({
      name: "default",
      ...defaults,
      template: "t1",
      idleTimeoutMs: undefined,
      maxLifetimeMs: undefined,
    });
    expect(plans.get("big")).toMatchObject({ idleTimeoutMs: 90_000, workspaceSize: "2147483648" });
  });

  it("names the variable, the file and the field of what is wrong, in one line", () => {
    const cases: [string, string][] = [
      ["", "PLANS_FILE: /etc/fleet/plans.yaml: empty, expected plans:"],
      [
        "plans: {free: {template: x}",
        "PLANS_FILE: /etc/fleet/plans.yaml: not YAML (line 2: unexpected end of the stream within a flow collection)",
      ],
      [
        "default: free\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans: expected a map of plan names to plans",
      ],
      [
        "plans:\n  free: {template: x, idleTimeout: soon}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.idleTimeout: expected a duration such as 90, 90s, 15m, 2h or 1h30m",
      ],
      [
        "plans:\n  free: {idleTimeout: 15m}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.template: expected a PodTemplate name",
      ],
      [
        "plans:\n  free: {template: Not_A_Name}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.template: expected a PodTemplate name",
      ],
      [
        "plans:\n  free: {template: x, maxInstancesPerClient: 0}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.maxInstancesPerClient: expected a whole number of at least 1",
      ],
      [
        "plans:\n  free: {template: x, poolSize: 1.5}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.poolSize: expected a whole number (0 or more)",
      ],
      [
        "plans:\n  free: {template: x, workspaceSize: lots}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.free.workspaceSize: expected a Kubernetes quantity such as 1, 500m or 1Gi",
      ],
      [
        "plans:\n  free: {template: x, idletimeout: 15m}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: unknown field plans.free.idletimeout",
      ],
      ["plan:\n  free: {template: x}\n", "PLANS_FILE: /etc/fleet/plans.yaml: unknown field plan"],
      ["plans: {}\n", "PLANS_FILE: /etc/fleet/plans.yaml: plans: name at least one plan"],
      [
        "plans:\n  free: {template: x}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: default: name the plan of clients without one (no plan is called default)",
      ],
      [
        "default: gold\nplans:\n  free: {template: x}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: default: gold is not one of the plans",
      ],
      [
        "default: free\nplans:\n  free: {template: x}\n  'no spaces': {template: x}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.no spaces: a plan's name is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      ],
      [
        "plans:\n  default: {template: x, poolSize: 150}\n  pro: {template: y, poolSize: 50}\n",
        "PLANS_FILE: /etc/fleet/plans.yaml: plans.*.poolSize: the pools together (200) must be less than MAX_INSTANCES (200): members count against it",
      ],
    ];
    for (const [text, message] of cases) expect(refusal(text)).toBe(message);
  });

  it("never repeats the file's contents in an error", () => {
    // A YAML error's own message quotes the lines around it; ours names the line alone.
    const message = refusal("plans:\n  free: {template: x, secret-looking-value: [\n");
    expect(message).not.toContain("secret-looking-value");
    expect(message.split("\n")).toHaveLength(1);
  });
});

describe("loadPlans", () => {
  const sources = (env: Record<string, string>, files: Record<string, string> = {}) => ({
    env: { CLIENT_AUTH: "open", ...env },
    readFile: (path: string) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error("missing"), { code: "ENOENT" });
      return content;
    },
  });

  it("without PLANS_FILE: one plan, default, made from today's variables (its timeouts are the fleet-wide ones, as before)", () => {
    const plans = loadPlans(
      sources({
        POD_TEMPLATE: "tpl",
        MAX_INSTANCES_PER_CLIENT: "2",
        IDLE_TIMEOUT: "15m",
        MAX_LIFETIME: "8h",
        WORKSPACE_SIZE: "3Gi",
        POOL_SIZE: "4",
      }),
    ).current();
    expect(plans.all).toEqual([
      {
        name: "default",
        template: "tpl",
        maxInstancesPerClient: 2,
        idleTimeoutMs: undefined,
        maxLifetimeMs: undefined,
        workspaceSize: "3Gi",
        poolSize: 4,
      },
    ]);
    expect(loadHandlerConfig(sources({})).plans.current().default).toEqual({
      name: "default",
      ...defaults,
      idleTimeoutMs: undefined,
      maxLifetimeMs: undefined,
    });
  });

  it("reads PLANS_FILE at start, with the variables as every plan's defaults, and re-reads it", () => {
    const config = loadHandlerConfig(
      sources(
        { PLANS_FILE: "/plans.yaml", WORKSPACE_SIZE: "3Gi", CREDENTIALS_RELOAD: "2s" },
        { "/plans.yaml": CONTRACT_EXAMPLE.replace("workspaceSize: 10Gi, ", "") },
      ),
    );
    expect(config.plans.current().get("pro")?.workspaceSize).toBe("3Gi");
    expect(config.plans.current().get("free")?.workspaceSize).toBe("1Gi");
    expect(config.credentialFiles.map((f) => [f.variable, f.withinMs])).toEqual([
      ["PLANS_FILE", 2_000],
    ]);
  });

  it("stops the start on a bad or unreadable file, naming it", () => {
    expect(() =>
      loadHandlerConfig(sources({ PLANS_FILE: "/p" }, { "/p": "plans:\n  x: {template: t}\n" })),
    ).toThrow(
      "PLANS_FILE: /p: default: name the plan of clients without one (no plan is called default)",
    );
    expect(() => loadHandlerConfig(sources({ PLANS_FILE: "/nowhere" }))).toThrow(
      "PLANS_FILE: cannot read /nowhere (ENOENT)",
    );
  });

  it("keeps the last good plans when an edit is bad, and takes the next good one", async () => {
    let contents = CONTRACT_EXAMPLE;
    const file = new ReloadingFile({
      variable: "PLANS_FILE",
      path: "/plans.yaml",
      format: plansFormat(options),
      withinMs: 2_000,
      initial: contents,
      read: async () => contents,
    });
    const errors: string[] = [];
    const log = createLogger(
      { level: "info", name: "test" },
      {
        write: (line: string) => {
          const entry = JSON.parse(line);
          if (entry.level === "error") errors.push(entry.reason);
        },
      },
    );
    file.watch(log, { loaded: () => undefined, failed: () => undefined });
    contents = CONTRACT_EXAMPLE.replace("idleTimeout: 2h", "idleTimeout: two hours");
    await file.check();
    expect(file.current().get("pro")?.idleTimeoutMs).toBe(2 * 3600_000);
    expect(errors).toEqual([
      "PLANS_FILE: /etc/fleet/plans.yaml: plans.pro.idleTimeout: expected a duration such as 90, 90s, 15m, 2h or 1h30m",
    ]);
    contents = CONTRACT_EXAMPLE.replace("idleTimeout: 2h", "idleTimeout: 3h");
    await file.check();
    expect(file.current().get("pro")?.idleTimeoutMs).toBe(3 * 3600_000);
  });
});

describe("what an instance takes of its plan", () => {
  const plans = parsePlans(CONTRACT_EXAMPLE, options);

  it("records its name and timeouts in whole seconds (at least one)", () => {
    expect(planRecordOf(plans.get("free") ?? plans.default)).toEqual({
      name: "free",
      idleTimeoutSeconds: 900,
      maxLifetimeSeconds: 8 * 3600,
    });
    expect(
      planRecordOf({ ...plans.default, idleTimeoutMs: 1, maxLifetimeMs: 1_500 }),
    ).toMatchObject({ idleTimeoutSeconds: 1, maxLifetimeSeconds: 2 });
    // A plan that sets none records none: the fleet-wide ones apply when the reaper decides.
    expect(
      planRecordOf({ ...plans.default, idleTimeoutMs: undefined, maxLifetimeMs: undefined }),
    ).toEqual({ name: "free", idleTimeoutSeconds: undefined, maxLifetimeSeconds: undefined });
  });

  it("is made from its plan's template as the plans say now, else the one it records", () => {
    expect(currentTemplateOf({ plan: "pro", podTemplate: "old" }, plans)).toBe("gptme-client-pro");
    expect(currentTemplateOf({ plan: "gold", podTemplate: "old" }, plans)).toBe("old");
    expect(currentTemplateOf({ podTemplate: "from-before-plans" }, plans)).toBe(
      "from-before-plans",
    );
  });
});
