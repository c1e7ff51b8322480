#!/usr/bin/env -S node --max-old-space-size=256 --max-semi-space-size=4
// The V8 flags above keep the reaper's peak memory low: a pass makes much short-lived
// garbage (one API call per delete) and small young/old generations collect it sooner
// (measured in docs/BENCHMARKS.md). Run it as an executable to get them.
import { renderUsage } from "citty";
import { TokenKeyring } from "../shared/actions/token-keyring.js";
import { ConfigError, defaultSources, loadMemberConfig } from "../shared/config/load.js";
import { Kube } from "../shared/kube/client.js";
import { loadKubeCredentials } from "../shared/kube/kubeconfig.js";
import { createLogger, type Logger, LogOutput } from "../shared/log.js";
import { fleetVersion } from "../shared/version.js";
import { tendPool } from "./pool-pass.js";
import { reap } from "./reap.js";
import { command, type ReaperSettings, settingsFrom } from "./settings.js";
import { abortedPass, passCountsOf, recordPass } from "./stats.js";

/** How long a pass waits for the members it starts to answer (a gptme-server starts in seconds). */
const MEMBER_SERVING_WAIT_MS = 60_000;
/**
 * How long the first probes of a pass may wait for this Job pod's address to be admitted by
 * network policy (a second or more under load on a real node); see reaper/judge.ts.
 */
const PROBE_ADMISSION_WAIT_MS = 10_000;
/** The longest the last log lines may take to reach a slow reader before the reaper exits. */
const EXIT_FLUSH_MS = 5_000;

async function main(output: LogOutput): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${await renderUsage(command)}\n`);
    return 0;
  }
  if (argv.includes("--version")) {
    process.stdout.write(`fleet-reaper ${fleetVersion()}\n`);
    return 0;
  }
  let settings: ReaperSettings;
  let kube: Kube;
  try {
    settings = settingsFrom(argv);
    kube = new Kube(await loadKubeCredentials(), settings.namespace);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`fleet-reaper: ${error.message}\n`);
    return 2;
  }
  const log = createLogger({ level: settings.logLevel, name: "fleet-reaper" }, output);
  log.info(
    {
      version: fleetVersion(),
      namespace: settings.namespace,
      idleTimeoutSeconds: settings.idleTimeoutMs / 1000,
      maxLifetimeSeconds: settings.maxLifetimeMs / 1000,
      workspaceRetentionSeconds: settings.workspaceRetentionMs / 1000,
      concurrency: settings.concurrency,
      timeLimitSeconds: settings.timeLimitMs === undefined ? null : settings.timeLimitMs / 1000,
      probeTimeoutSeconds:
        settings.probeTimeoutMs === undefined ? null : settings.probeTimeoutMs / 1000,
      dryRun: settings.dryRun,
      rollout: settings.rollout
        ? { idleSeconds: settings.rollout.idleMs / 1000, max: settings.rollout.max }
        : "off",
    },
    "starting",
  );
  try {
    const summary = await reap(kube, {
      defaults: { idleTimeoutMs: settings.idleTimeoutMs, maxLifetimeMs: settings.maxLifetimeMs },
      workspaceRetentionMs: settings.workspaceRetentionMs,
      dryRun: settings.dryRun,
      concurrency: settings.concurrency,
      timeLimitMs: settings.timeLimitMs,
      probe:
        settings.probeTimeoutMs === undefined
          ? false
          : { timeoutMs: settings.probeTimeoutMs, admissionWaitMs: PROBE_ADMISSION_WAIT_MS },
      rollout: settings.rollout ?? false,
      now: () => new Date(),
      log,
    });
    const pool = settings.poolSize > 0 ? await tendPoolOf(kube, settings, log) : undefined;
    if (!settings.dryRun) await recordPass(kube, passCountsOf(summary, pool, new Date()), log);
    return summary.failed > 0 || (pool?.failed ?? 0) > 0 ? 1 : 0;
  } catch (error) {
    log.error({ error: (error as Error).message }, "the pass failed before it could finish");
    if (!settings.dryRun) await recordPass(kube, abortedPass(new Date()), log);
    return 1;
  } finally {
    kube.close();
  }
}

/**
 * The pool's part of the pass: members are made like the handler makes instances, so it
 * reads the settings that make an instance (the same ConfigMap) and the token keys, and
 * nothing of the handler's clients (a reaper has no API_KEYS_FILE).
 */
async function tendPoolOf(kube: Kube, settings: ReaperSettings, log: Logger) {
  const config = loadMemberConfig({
    ...defaultSources(),
    env: { ...process.env, NAMESPACE: settings.namespace },
  });
  const keyring = new TokenKeyring(config.instanceTokenKeys, kube, config.credentialsReloadMs);
  return tendPool(kube, {
    plans: settings.plans,
    // Well inside the CronJob's deadline: members started now are ready when claimed.
    servingWaitMs: MEMBER_SERVING_WAIT_MS,
    member: { resources: config, workspaces: config.workspaces },
    keyring,
    concurrency: settings.concurrency,
    dryRun: settings.dryRun,
    now: () => new Date(),
    log,
  });
}

const output = new LogOutput();
const code = await main(output);
// Exit explicitly: a log reader that stops reading must not keep a finished pass alive.
await output.flushed(EXIT_FLUSH_MS);
process.exit(code);
