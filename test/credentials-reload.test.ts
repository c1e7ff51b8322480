import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
} from "./support/cluster.js";
import { bareTemplate, installTemplate } from "./support/fleet.js";
import { freePort, type HandlerProcess, spawnHandler, waitHealthy } from "./support/process.js";
import { SecretVolume } from "./support/secret-volume.js";

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

  it("after a swap, a new key works and a removed one is refused within the bound, and 200 requests in flight are all answered", async () => {
    const loadedBefore = await metric(
      "fleet_credentials_loaded_timestamp_seconds",
      "API_KEYS_FILE",
    );
    // 200 requests that each wait 2 s for their Pod, in flight across the swap.
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      asClient(i % 2 ? KEPT : OLD, "one", 2).then(
        (r) => r.status,
        (error: Error) => error.message,
      ),
    );
    await sleep(500);
    const swappedAt = volume.publish({
      "api-keys": `${KEPT}\n${NEW}\n`,
      "admin-token": `${ADMIN_ONE}\n`,
    });

    // The removed key: 202 until the reload, then 403 unknown_api_key from its next request on.
    const statuses: number[] = [];
    let refused: { elapsed: number; body: { code?: string } } | undefined;
    while (!refused) {
      const res = await asClient(OLD);
      statuses.push(res.status);
      if (res.status === 403)
        refused = {
          elapsed: Date.now() - swappedAt,
          body: (await res.json()) as { code?: string },
        };
      else await res.body?.cancel();
      expect(Date.now() - swappedAt).toBeLessThan(RELOAD_MS + 10_000);
    }
    expect(refused.body.code).toBe("unknown_api_key");
    expect(new Set(statuses.slice(0, -1))).toEqual(
      statuses.length > 1 ? new Set([202]) : new Set(),
    );
    const accepted = await untilStatus(() => asClient(NEW), 202, swappedAt);
    figures.push(
      `API_KEYS_FILE swap -> removed key refused after ${refused.elapsed} ms, new key accepted after ${accepted.elapsed} ms (CREDENTIALS_RELOAD ${RELOAD_MS} ms)`,
    );
    expect(refused.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(accepted.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    // Every later request of the removed key is refused; the kept key never noticed.
    for (let i = 0; i < 20; i++) expect((await asClient(OLD)).status).toBe(403);
    expect((await asClient(KEPT)).status).toBe(202);

    // The 200 were identified before the swap or after it: each got an answer, none dropped.
    const answered = await Promise.all(inFlight);
    figures.push(
      `requests in flight across the API_KEYS_FILE swap: ${answered.length}, answered: ${answered.filter((s) => typeof s === "number").length}`,
    );
    expect(answered.every((s) => s === 202)).toBe(true);

    // The revoked key's instance stays; the reaper takes it when it has been idle long enough.
    expect((await clientPodNames(namespace)).length).toBe(3);
    expect(await metric("fleet_credentials_entries", "API_KEYS_FILE")).toBe(2);
    expect(
      await metric("fleet_credentials_loaded_timestamp_seconds", "API_KEYS_FILE"),
    ).toBeGreaterThan(loadedBefore ?? Number.POSITIVE_INFINITY);
    expect(errorLines("API_KEYS_FILE")).toEqual([]);
  });

  it("a malformed or missing keys file keeps the last good keys, logs one error each, stays ready, and a good file is picked up later", async () => {
    volume.publish({
      "api-keys": `${KEPT}\nnot a key: ${LATER}\n`,
      "admin-token": `${ADMIN_ONE}\n`,
    });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asClient(KEPT)).status).toBe(202);
    expect((await asClient(NEW)).status).toBe(202);
    expect((await asClient(OLD)).status).toBe(403);
    expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
    expect(await metric("fleet_credentials_reload_errors_total", "API_KEYS_FILE")).toBe(1);
    expect(errorLines("API_KEYS_FILE")).toHaveLength(1);
    expect(errorLines("API_KEYS_FILE")[0].reason).toBe(
      "API_KEYS_FILE: line 2 is neither an API key nor sha256:<64 hex digits>",
    );

    // The key dropped from the Secret: its symlink goes away.
    volume.publish({ "admin-token": `${ADMIN_ONE}\n` });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asClient(NEW)).status).toBe(202);
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

  it("the admin token: a swap takes effect within the bound with 200 requests in flight; an empty file keeps the last good token", async () => {
    const keys = `${LATER}\n`;
    const inFlight = Array.from({ length: 200 }, () =>
      asAdmin(ADMIN_ONE).then(
        (r) => r.status,
        (error: Error) => error.message,
      ),
    );
    const swappedAt = volume.publish({ "api-keys": keys, "admin-token": `${ADMIN_TWO}\n` });
    const accepted = await untilStatus(() => asAdmin(ADMIN_TWO), 200, swappedAt);
    const refused = await untilStatus(() => asAdmin(ADMIN_ONE), 401, swappedAt);
    figures.push(
      `ADMIN_TOKEN_FILE swap -> new token accepted after ${accepted.elapsed} ms, old refused after ${refused.elapsed} ms`,
    );
    expect(accepted.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(refused.elapsed).toBeLessThan(RELOAD_MS + SLACK_MS);
    expect(refused.body.code).toBe("unauthorized");
    const answered = await Promise.all(inFlight);
    figures.push(
      `admin requests in flight across the ADMIN_TOKEN_FILE swap: ${answered.length}, statuses: ${[...new Set(answered)].join(", ")}`,
    );
    // Before the swap took effect 200, after it 401: never anything else, never no answer.
    for (const status of answered) expect([200, 401]).toContain(status);

    volume.publish({ "api-keys": keys, "admin-token": "\n" });
    await sleep(3 * RELOAD_MS + SLACK_MS);
    expect((await asAdmin(ADMIN_TWO)).status).toBe(200);
    expect((await fetch(`${handler.url}/readyz`)).status).toBe(200);
    expect(await metric("fleet_credentials_reload_errors_total", "ADMIN_TOKEN_FILE")).toBe(1);
    expect(errorLines("ADMIN_TOKEN_FILE").map((l) => l.reason)).toEqual([
      "ADMIN_TOKEN_FILE: the file is empty",
    ]);

    const fixedAt = volume.publish({ "api-keys": keys, "admin-token": `${ADMIN_ONE}\n` });
    expect((await untilStatus(() => asAdmin(ADMIN_ONE), 200, fixedAt)).elapsed).toBeLessThan(
      RELOAD_MS + SLACK_MS,
    );
    expect((await asAdmin(ADMIN_TWO)).status).toBe(401);
    expect(handler.stdout.join("\n")).not.toContain(ADMIN_TWO);
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
