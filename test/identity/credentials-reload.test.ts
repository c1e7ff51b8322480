import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
} from "../support/cluster.js";
import { bareTemplate, installTemplate } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";
import { freePort, type HandlerProcess, spawnHandler, waitHealthy } from "../support/process.js";
import { SecretVolume } from "../support/secret-volume.js";

let podHealth: PodHealth | undefined;

/** CREDENTIALS_RELOAD for these handlers: the bound a change must take effect within. */
const RELOAD_MS = 1_000;
/** What the test itself adds: its polling, a loaded machine's timers. */
const SLACK_MS = 500;

const KEPT = "key-kept-000001";
const OLD = "key-old-0000001";
const NEW = "key-new-0000001";
const LATER = "key-later-00001";
const ADMIN_ONE = "admin-token-one-0001";
const ADMIN_TWO = "admin-token-two-0002";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("credentials files that change while the handler runs (a mounted Secret)", () => {
  let namespace: string;
  let volume: SecretVolume;
  let handler: HandlerProcess;
  const figures: string[] = [];

  const get = (path: string, headers: Record<string, string>) =>
    fetch(`${handler.url}${path}`, { headers });
  /** A client request that costs one cached read: its Pod exists and never becomes ready. */
  const asClient = (key: string, instance = "one", wait = 0) =>
    get(`/instances/${instance}?wait=${wait}`, { "x-api-key": key });
  const asAdmin = (token: string) =>
    get("/admin/pods?limit=1", { authorization: `Bearer ${token}` });

  /** Polls until `probe` answers `status`; the time from `since` it took. */
  async function untilStatus(probe: () => Promise<Response>, status: number, since: number) {
    for (;;) {
      const res = await probe();
      if (res.status === status)
        return { elapsed: Date.now() - since, body: (await res.json()) as { code?: string } };
      if (Date.now() - since > RELOAD_MS + 10_000) throw new Error(`never answered ${status}`);
      await sleep(20);
    }
  }

  async function metric(name: string, file: string): Promise<number | undefined> {
    const text = await (await fetch(`${handler.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}{file="${file}"}`));
    return line === undefined ? undefined : Number(line.split(" ").at(-1));
  }

  const errorLines = (file: string) =>
    handler.stdout.map((l) => JSON.parse(l)).filter((l) => l.level === "error" && l.file === file);

  beforeAll(async () => {
    namespace = await createTestNamespace("creds");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    // Pods that are never scheduled: every request is answered at once (202) or after its wait.
    const stuck = bareTemplate();
    if (stuck.template?.spec)
      stuck.template.spec.nodeSelector = { "gptme.ai/no-such-node": "true" };
    await installTemplate(namespace, stuck);
    volume = new SecretVolume({ "api-keys": `${KEPT}\n${OLD}\n`, "admin-token": `${ADMIN_ONE}\n` });
    handler = spawnHandler({
      KUBECONFIG: kubeconfigPath(),
      NAMESPACE: namespace,
      HTTP_PORT: String(await freePort()),
      API_KEYS_FILE: volume.path("api-keys"),
      ADMIN_TOKEN_FILE: volume.path("admin-token"),
      CREDENTIALS_RELOAD: `${RELOAD_MS / 1000}s`,
    });
    await waitHealthy(handler);
  });

  afterAll(async () => {
    handler?.proc.kill("SIGKILL");
    volume?.remove();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
    if (figures.length) console.info(`credentials reload figures:\n  ${figures.join("\n  ")}`);
  });

  it("starts with the keys and the token of the files", async () => {
    expect((await asClient(KEPT)).status).toBe(202);
    expect((await asClient(OLD)).status).toBe(202);
    expect((await asClient(NEW)).status).toBe(403);
    expect((await asAdmin(ADMIN_ONE)).status).toBe(200);
    expect(await metric("fleet_credentials_entries", "API_KEYS_FILE")).toBe(2);
    expect(await metric("fleet_credentials_entries", "ADMIN_TOKEN_FILE")).toBe(1);
    expect(await metric("fleet_credentials_reload_errors_total", "API_KEYS_FILE")).toBe(0);
  });

  it("after a swap, a removed key is refused from its next request and a new key works, within the bound", async () => {
    const loadedBefore = await metric(
      "fleet_credentials_loaded_timestamp_seconds",
      "API_KEYS_FILE",
    );
    const swappedAt = volume.publish({
      "api-keys": `${KEPT}\n${NEW}\n`,
      "admin-token": `${ADMIN_ONE}\n`,
    });
    // Both keys asked in turn: each answer is the old state until the reload, then the new.
    const oldKey: number[] = [];
    const newKey: number[] = [];
    let refusedAfter: number | undefined;
    let acceptedAfter: number | undefined;
    let code: string | undefined;
    while (refusedAfter === undefined || acceptedAfter === undefined) {
      const [old, fresh] = await Promise.all([asClient(OLD), asClient(NEW)]);
      const answeredAt = Date.now() - swappedAt;
      oldKey.push(old.status);
      newKey.push(fresh.status);
      if (old.status === 403 && refusedAfter === undefined) {
        refusedAfter = answeredAt;
        code = ((await old.json()) as { code: string }).code;
      }
      if (fresh.status === 202) acceptedAfter ??= answeredAt;
      expect(answeredAt).toBeLessThan(RELOAD_MS + 10_000);
      await sleep(10);
    }
    figures.push(
      `API_KEYS_FILE swap, idle handler: removed key refused after ${refusedAfter} ms, new key accepted after ${acceptedAfter} ms (CREDENTIALS_RELOAD ${RELOAD_MS} ms)`,
    );
    expect(refusedAfter).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(acceptedAfter).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(code).toBe("unknown_api_key");
    // One cut-over, never back: 202s then 403s for the removed key, the reverse for the new.
    expect(oldKey).toEqual([
      ...oldKey.filter((s) => s === 202),
      ...oldKey.filter((s) => s === 403),
    ]);
    expect(newKey).toEqual([
      ...newKey.filter((s) => s === 403),
      ...newKey.filter((s) => s === 202),
    ]);
    for (let i = 0; i < 20; i++) expect((await asClient(OLD)).status).toBe(403);
    expect((await asClient(KEPT)).status).toBe(202);

    // The revoked key's instance stays; the reaper takes it when it has been idle long enough.
    expect((await clientPodNames(namespace)).length).toBe(3);
    expect(await metric("fleet_credentials_entries", "API_KEYS_FILE")).toBe(2);
    expect(
      await metric("fleet_credentials_loaded_timestamp_seconds", "API_KEYS_FILE"),
    ).toBeGreaterThan(loadedBefore ?? Number.POSITIVE_INFINITY);
    expect(errorLines("API_KEYS_FILE")).toEqual([]);
  });

  it("200 requests in flight across a swap each get an answer: the old keys' or the new keys'", async () => {
    // Each waits 2 s for a Pod that never becomes ready: all are in flight at the swap.
    const keys = [KEPT, NEW];
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      asClient(keys[i % 2] ?? KEPT, "one", 2).then(
        (r) => ({ key: keys[i % 2], status: r.status }),
        (error: Error) => ({ key: keys[i % 2], status: error.message }),
      ),
    );
    await sleep(500);
    const swappedAt = volume.publish({
      "api-keys": `${KEPT}\n${OLD}\n`,
      "admin-token": `${ADMIN_ONE}\n`,
    });
    const answered = await Promise.all(inFlight);
    // A request is identified once, when it arrives: before the reload with the old keys,
    // after it with the new ones (NEW is no longer one of them).
    for (const { key, status } of answered) {
      expect(key === KEPT ? [202] : [202, 403]).toContain(status);
    }
    await untilStatus(() => asClient(OLD), 202, swappedAt);
    const reload = handler.stdout
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "reloaded" && l.file === "API_KEYS_FILE")
      .at(-1);
    // Timing is asserted on the idle handler above; here the 200 requests (and their Pod
    // watches) saturate this machine's 2 cores, which delays the read as it delays them.
    figures.push(
      `API_KEYS_FILE swap with 200 requests in flight: all ${answered.length} answered (${answered.filter((a) => a.status === 202).length} x 202, ${answered.filter((a) => a.status === 403).length} x 403); reloaded ${Date.parse(reload.time) - swappedAt} ms after the swap`,
    );
    expect((await asClient(NEW)).status).toBe(403);
  });

  it("a malformed or missing keys file keeps the last good keys, logs one error each, stays ready, and a good file is picked up later", async () => {
    volume.publish({
      "api-keys": `${KEPT}\nnot a key: ${LATER}\n`,
      "admin-token": `${ADMIN_ONE}\n`,
    });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asClient(KEPT)).status).toBe(202);
    expect((await asClient(OLD)).status).toBe(202);
    expect((await asClient(NEW)).status).toBe(403);
    expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
    expect(await metric("fleet_credentials_reload_errors_total", "API_KEYS_FILE")).toBe(1);
    expect(errorLines("API_KEYS_FILE")).toHaveLength(1);
    expect(errorLines("API_KEYS_FILE")[0].reason).toBe(
      "API_KEYS_FILE: line 2 is neither an API key nor sha256:<64 hex digits>",
    );

    // The key dropped from the Secret: its symlink goes away.
    volume.publish({ "admin-token": `${ADMIN_ONE}\n` });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asClient(OLD)).status).toBe(202);
    expect(await metric("fleet_credentials_reload_errors_total", "API_KEYS_FILE")).toBe(2);
    expect(errorLines("API_KEYS_FILE")).toHaveLength(2);
    expect(errorLines("API_KEYS_FILE")[1].reason).toMatch(/\(ENOENT\)$/);

    const swappedAt = volume.publish({ "api-keys": `${LATER}\n`, "admin-token": `${ADMIN_ONE}\n` });
    const accepted = await untilStatus(() => asClient(LATER), 202, swappedAt);
    expect(accepted.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect((await asClient(KEPT)).status).toBe(403);
    expect(await metric("fleet_credentials_entries", "API_KEYS_FILE")).toBe(1);
    expect(await metric("fleet_credentials_reload_errors_total", "API_KEYS_FILE")).toBe(2);
    // No key, good or bad, ever reaches a log line.
    for (const key of [KEPT, OLD, NEW, LATER, ADMIN_ONE]) {
      expect(handler.stdout.join("\n")).not.toContain(key);
    }
  });

  it("the admin token: a swap takes effect within the bound; 200 requests in flight across one are all answered", async () => {
    const keys = `${LATER}\n`;
    const swappedAt = volume.publish({ "api-keys": keys, "admin-token": `${ADMIN_TWO}\n` });
    const [accepted, refused] = await Promise.all([
      untilStatus(() => asAdmin(ADMIN_TWO), 200, swappedAt),
      untilStatus(() => asAdmin(ADMIN_ONE), 401, swappedAt),
    ]);
    figures.push(
      `ADMIN_TOKEN_FILE swap, idle handler: new token accepted after ${accepted.elapsed} ms, old refused after ${refused.elapsed} ms`,
    );
    expect(accepted.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(refused.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(refused.body.code).toBe("unauthorized");

    const inFlight = Array.from({ length: 200 }, () =>
      asAdmin(ADMIN_TWO).then(
        (r) => r.status,
        (error: Error) => error.message,
      ),
    );
    const stormAt = volume.publish({ "api-keys": keys, "admin-token": `${ADMIN_ONE}\n` });
    const answered = await Promise.all(inFlight);
    // Before the reload 200, after it 401: never anything else, never no answer.
    for (const status of answered) expect([200, 401]).toContain(status);
    await untilStatus(() => asAdmin(ADMIN_ONE), 200, stormAt);
    figures.push(
      `ADMIN_TOKEN_FILE swap with 200 admin requests in flight: all ${answered.length} answered (${answered.filter((s) => s === 200).length} x 200, ${answered.filter((s) => s === 401).length} x 401)`,
    );
  });

  it("an empty admin token file keeps the last good token, logs one error, stays ready; a good file is picked up later", async () => {
    const keys = `${LATER}\n`;
    volume.publish({ "api-keys": keys, "admin-token": "\n" });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asAdmin(ADMIN_ONE)).status).toBe(200);
    expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
    expect(await metric("fleet_credentials_reload_errors_total", "ADMIN_TOKEN_FILE")).toBe(1);
    expect(errorLines("ADMIN_TOKEN_FILE").map((l) => l.reason)).toEqual([
      "ADMIN_TOKEN_FILE: the file is empty",
    ]);

    const fixedAt = volume.publish({ "api-keys": keys, "admin-token": `${ADMIN_TWO}\n` });
    expect((await untilStatus(() => asAdmin(ADMIN_TWO), 200, fixedAt)).elapsed).toBeLessThan(
      RELOAD_MS + SLACK_MS,
    );
    expect((await asAdmin(ADMIN_ONE)).status).toBe(401);
    for (const secret of [ADMIN_ONE, ADMIN_TWO]) {
      expect(handler.stdout.join("\n")).not.toContain(secret);
    }
  });

  it("a keys file that is malformed at start stops the process with one line naming the variable", async () => {
    const bad = new SecretVolume({ "api-keys": `${KEPT}\nnot a key\n` });
    try {
      const starting = spawnHandler({
        KUBECONFIG: kubeconfigPath(),
        NAMESPACE: namespace,
        HTTP_PORT: String(await freePort()),
        API_KEYS_FILE: bad.path("api-keys"),
      });
      expect(await starting.exited).toBe(2);
      expect(starting.stderr).toHaveLength(1);
      expect(starting.stderr[0]).toMatch(/API_KEYS_FILE: line 2/);
      expect(starting.stderr[0]).not.toContain(KEPT);
    } finally {
      bad.remove();
    }
  });
});
