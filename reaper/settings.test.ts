import { describe, expect, it } from "vitest";
import { ConfigError, Plans } from "../shared/config/load.js";
import { settingsFrom } from "./settings.js";

const sources = (env: Record<string, string> = {}) => ({
  env,
  readFile: () => {
    throw new Error("no file");
  },
});

describe("reaper settings", () => {
  it("defaults to the environment's timeouts", () => {
    expect(settingsFrom([], sources({ NAMESPACE: "fleet", IDLE_TIMEOUT: "10m" }))).toEqual({
      dryRun: false,
      namespace: "fleet",
      idleTimeoutMs: 600_000,
      maxLifetimeMs: 86_400_000,
      concurrency: 10,
      probeTimeoutMs: 2_000,
      workspaceRetentionMs: 30 * 86_400_000,
      rollout: {
        idleMs: 600_000,
        max: 10,
        revision: { defaultCpuLimit: "1", defaultMemoryLimit: "1Gi", workspaces: true },
      },
      logLevel: "info",
      plans: expect.any(Plans),
      poolSize: 0,
    });
  });

  it("takes POOL_SIZE from the environment and names it when invalid", () => {
    expect(settingsFrom([], sources({ NAMESPACE: "fleet", POOL_SIZE: "5" })).poolSize).toBe(5);
    expect(() => settingsFrom([], sources({ NAMESPACE: "fleet", POOL_SIZE: "-1" }))).toThrow(
      /^POOL_SIZE: /,
    );
  });

  it("reads the plans: each keeps its pool, every pool together is the pass's", () => {
    const plans =
      "default: free\nplans:\n  free: {template: a, poolSize: 2}\n  pro: {template: b}\n";
    const settings = settingsFrom([], {
      env: { NAMESPACE: "fleet", PLANS_FILE: "/plans.yaml", POOL_SIZE: "1" },
      readFile: () => plans,
    });
    expect(settings.plans.all.map((p) => [p.name, p.template, p.poolSize])).toEqual([
      ["free", "a", 2],
      ["pro", "b", 1],
    ]);
    expect(settings.poolSize).toBe(3);
    // A bad file stops the pass before it starts (exit 2), naming the file and the field.
    expect(() =>
      settingsFrom([], {
        env: { NAMESPACE: "fleet", PLANS_FILE: "/plans.yaml" },
        readFile: () => "plans:\n  free: {template: a}\n",
      }),
    ).toThrow(/^PLANS_FILE: \/plans.yaml: default: /);
  });

  it("takes the rollout from ROLLOUT and ROLLOUT_IDLE, and its bound from --max-rollout", () => {
    const env = sources({ ROLLOUT_IDLE: "2m", WORKSPACES: "off", DEFAULT_CPU_LIMIT: "2" });
    expect(settingsFrom(["--max-rollout", "100"], env).rollout).toEqual({
      idleMs: 120_000,
      max: 100,
      revision: { defaultCpuLimit: "2", defaultMemoryLimit: "1Gi", workspaces: false },
    });
    expect(settingsFrom([], sources({ ROLLOUT: "off" })).rollout).toBeUndefined();
    expect(settingsFrom(["--max-rollout=0"], sources()).rollout).toBeUndefined();
    expect(() => settingsFrom(["--max-rollout", "-1"], sources())).toThrow(/^--max-rollout:/);
    expect(() => settingsFrom(["--max-rollout", "ten"], sources())).toThrow(/^--max-rollout:/);
    expect(() => settingsFrom([], sources({ ROLLOUT: "always" }))).toThrow(/^ROLLOUT: /);
    expect(() => settingsFrom([], sources({ ROLLOUT_IDLE: "soon" }))).toThrow(/^ROLLOUT_IDLE: /);
  });

  it("takes the workspace retention from WORKSPACE_RETENTION, or --workspace-retention", () => {
    const env = sources({ WORKSPACE_RETENTION: "7d" });
    expect(settingsFrom([], env).workspaceRetentionMs).toBe(7 * 86_400_000);
    expect(settingsFrom(["--workspace-retention", "2h"], env).workspaceRetentionMs).toBe(7_200_000);
  });

  it("bounds the probe with --probe-timeout and turns it off with --no-probe", () => {
    expect(settingsFrom(["--probe-timeout", "500ms"], sources()).probeTimeoutMs).toBe(500);
    expect(settingsFrom(["--probe-timeout=3"], sources()).probeTimeoutMs).toBe(3_000);
    expect(settingsFrom(["--no-probe"], sources()).probeTimeoutMs).toBeUndefined();
    expect(settingsFrom(["--probe"], sources()).probeTimeoutMs).toBe(2_000);
  });

  it("lets flags override the environment", () => {
    const settings = settingsFrom(
      [
        "--dry-run",
        "--namespace",
        "other",
        "--idle-timeout",
        "90",
        "--max-lifetime=1h30m",
        "--concurrency",
        "4",
        "--time-limit",
        "150s",
      ],
      sources({ NAMESPACE: "fleet", IDLE_TIMEOUT: "10m" }),
    );
    expect(settings).toMatchObject({
      dryRun: true,
      namespace: "other",
      idleTimeoutMs: 90_000,
      maxLifetimeMs: 5_400_000,
      concurrency: 4,
      timeLimitMs: 150_000,
    });
    // No limit unless asked for: a pass run by hand judges the whole fleet.
    expect(settingsFrom([], sources()).timeLimitMs).toBeUndefined();
  });

  it.each([
    [["--idle-timeout", "forever"], "--idle-timeout"],
    [["--max-lifetime", ""], "--max-lifetime"],
    [["--concurrency", "0"], "--concurrency"],
    [["--concurrency", "many"], "--concurrency"],
    [["--probe-timeout", "soon"], "--probe-timeout"],
    [["--workspace-retention", "0"], "--workspace-retention"],
    [["--workspace-retention", "a while"], "--workspace-retention"],
    [["--probe-timeout", "0"], "--probe-timeout"],
    [["--time-limit", "0"], "--time-limit"],
    [["--time-limit", "later"], "--time-limit"],
    [["--namespace", "Bad_NS"], "--namespace"],
    [["--namespace", ""], "--namespace"],
    [["--bogus"], "--bogus"],
    [["stray"], "stray"],
  ])("%j is refused, naming %s", (argv, name) => {
    expect(() => settingsFrom(argv, sources())).toThrow(ConfigError);
    expect(() => settingsFrom(argv, sources())).toThrow(new RegExp(`^${name}`));
  });
});
