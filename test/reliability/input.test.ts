import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminKubeConfig,
  clientPodNames,
  createTestNamespace,
  deleteTestNamespace,
} from "../support/cluster.js";
import { installTemplate, startHandler, type TestHandler } from "../support/fleet.js";
import { answerPodHealth, type PodHealth } from "../support/pod-health.js";

let podHealth: PodHealth | undefined;

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GOOD_KEY = "fuzz-good-key-000001";
const GOOD_ID = "fuzz";

/** Ways to break each part of a request; every generated request has at least one. */
function generator(seed: number) {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chars = (alphabet: string, min: number, max: number) =>
    Array.from({ length: min + Math.floor(random() * (max - min + 1)) }, () =>
      pick([...alphabet]),
    ).join("");

  const badIds = [
    () => chars("ABCDEFGHIJ", 1, 10),
    () => `-${chars("abc", 1, 5)}`,
    () => `${chars("abc", 1, 5)}-`,
    () => chars("abcdef0123", 41, 300),
    () => encodeURIComponent(chars("_.~!*'();:@&=+$,?#[] ", 1, 8)),
    () => encodeURIComponent(chars("äöü€😀", 1, 4)),
    () => "a%20b",
    () => `${chars("ab", 1, 3)}%00`,
    () => "%2e%2e",
    () => chars("a", 10_000, 10_000),
  ];
  const badKeys = [
    () => chars("abcdef", 1, 7),
    () => chars("abcdef", 257, 2_000),
    () => `${chars("abcdef", 8, 20)} ${chars("xyz", 1, 3)}`,
    () =>
      `${chars("abcdef", 8, 20)}${pick([";", ",", '"', "'", "<", ">", "\\", "{", "}", "|", "^", "`", "%"])}`,
    () => encodeURIComponent(chars("äöü€😀", 8, 12)),
  ];
  const badWaits = [
    "-1",
    "61",
    "1e3",
    "abc",
    "",
    "0x10",
    "NaN",
    "Infinity",
    "60.5",
    "1,5",
    " 1",
    "9".repeat(400),
  ];
  const badMethods = ["POST", "PUT", "PATCH"];

  return (): { path: string; init: RequestInit; what: string } => {
    const kind = Math.floor(random() * 8);
    switch (kind) {
      case 0:
        return {
          what: "bad id",
          path: `/instances/${pick(badIds)()}`,
          init: { headers: { "x-api-key": GOOD_KEY } },
        };
      case 1: {
        const key = pick(badKeys)();
        return {
          what: "bad header key",
          path: `/instances/${GOOD_ID}`,
          init: { headers: { "x-api-key": key.replace(/[^\t\x20-\x7e]/g, "?") } },
        };
      }
      case 2:
        return {
          what: "bad path key",
          path: `/api/v1/${encodeURIComponent(pick(badKeys)())}/instances/${GOOD_ID}`,
          init: {},
        };
      case 3:
        return {
          what: "bad wait",
          path: `/instances/${GOOD_ID}?wait=${encodeURIComponent(pick(badWaits))}`,
          init: { headers: { "x-api-key": GOOD_KEY } },
        };
      case 4:
        return {
          what: "no key",
          path: pick([`/instances/${GOOD_ID}`, "/instances"]),
          init: { method: pick(["GET", "DELETE"]) },
        };
      case 5:
        return {
          what: "wrong method",
          path: pick([
            `/instances/${GOOD_ID}`,
            "/instances",
            `/api/v1/${GOOD_KEY}/instances/${GOOD_ID}`,
          ]),
          init: {
            method: pick(badMethods),
            headers: { "x-api-key": GOOD_KEY },
            body: chars('{}[]"a:1,', 0, 2_000),
          },
        };
      case 6:
        return {
          what: "unknown path",
          path: `/${chars("abcxyz/._-", 1, 60)}`.replace(
            /^\/(instances|admin|healthz|readyz|metrics|api)/,
            "/x$1",
          ),
          init: { headers: { "x-api-key": GOOD_KEY } },
        };
      default:
        return {
          what: "bad admin",
          path: pick(["/admin/pods", `/admin/pods/${pick(badIds)()}`, "/admin/pods?limit=-1"]),
          init: {
            method: pick(["GET", "DELETE"]),
            headers: pick<Record<string, string>>([
              {},
              { authorization: "Bearer wrong-token-xyz" },
            ]),
          },
        };
    }
  };
}

describe("bad input: 1,200 generated malformed requests", () => {
  let namespace: string;
  let handler: TestHandler;

  beforeAll(async () => {
    namespace = await createTestNamespace("fuzz");
    // Something answers gptme-server's health check at every pod IP (a kubelet's part).
    podHealth = answerPodHealth(namespace);
    await installTemplate(namespace);
    handler = startHandler(namespace, { ADMIN_TOKEN: "fuzz-admin-token-0123" });
  });

  afterAll(async () => {
    handler?.close();
    await podHealth?.stop();
    await deleteTestNamespace(namespace);
  });

  it("answers each with a 4xx JSON error with a code, and creates nothing", async () => {
    const next = generator(20261127);
    const failures: string[] = [];
    const byStatus: Record<number, number> = {};
    for (let i = 0; i < 1_200; i++) {
      const { path, init, what } = next();
      const res = await handler.request(path, init);
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const text = await res.text();
      let code: unknown;
      try {
        const body = JSON.parse(text);
        code = body.code;
        if (body.statusCode !== res.status)
          failures.push(`#${i} ${what}: statusCode ${body.statusCode} vs ${res.status}`);
      } catch {
        failures.push(`#${i} ${what}: not JSON: ${text.slice(0, 80)}`);
      }
      if (res.status < 400 || res.status >= 500)
        failures.push(`#${i} ${what}: status ${res.status} for ${path.slice(0, 80)}`);
      if (typeof code !== "string" || !/^[a-z_]+$/.test(code))
        failures.push(`#${i} ${what}: code ${String(code)}`);
    }
    expect(failures).toEqual([]);
    expect(Object.keys(byStatus).map(Number).sort()).toEqual([400, 401, 404]);

    expect(await clientPodNames(namespace)).toEqual([]);
    expect(
      (await adminKubeConfig().makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items,
    ).toHaveLength(0);
  });
});
