import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANNOTATION_SERVING_SINCE } from "../../shared/instance/serving.js";
import { adminKubeConfig, createTestNamespace, deleteTestNamespace } from "../support/cluster.js";
import {
  installTemplate,
  listenHandler,
  startHandler,
  type TestHandler,
} from "../support/fleet.js";
import { type GptmeServer, podIpOf, runInstancePod } from "../support/gptme.js";

// On the local cluster a KWOK Pod is Ready at once, while nothing listens at its IP: the fleet
// must call an instance ready only once its (real) gptme-server answers, hold gateway requests
// until then, and record the sighting so that nobody asks again.
describe("ready means gptme-server answers; the gateway holds a starting instance", () => {
  const KEY = "serving-key-0000001";
  let namespace: string;
  let one: TestHandler;
  let two: TestHandler;
  let shortHold: TestHandler;
  let http: { url: string; close(): Promise<void> };
  let shortHttp: { url: string; close(): Promise<void> };
  const servers: GptmeServer[] = [];
  const core = adminKubeConfig().makeApiClient(CoreV1Api);

  const instance = async (handler: TestHandler, id: string, wait: number) => {
    const res = await handler.request(`/instances/${id}?wait=${wait}`, { apiKey: KEY });
    return { status: res.status, body: await res.json() };
  };
  const viaGateway = (base: string, path: string, token: string) =>
    fetch(`${base}${path}/api/v2/conversations`, { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    namespace = await createTestNamespace("serving");
    await installTemplate(namespace);
    // Two replicas of the handler, as production runs them.
    one = startHandler(namespace);
    two = startHandler(namespace);
    shortHold = startHandler(namespace, { GATEWAY_HOLD: "1s" });
    http = await listenHandler(one);
    shortHttp = await listenHandler(shortHold);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await http?.close();
    await shortHttp?.close();
    for (const h of [one, two, shortHold]) h?.close();
    await deleteTestNamespace(namespace);
  });

  it("answers starting while the kubelet says Ready and nothing answers, ready once the server does", async () => {
    const first = await instance(one, "late", 0);
    expect(first.status).toBe(202);
    const { name } = first.body;
    await podIpOf(namespace, name);
    const pod = await core.readNamespacedPod({ name, namespace });
    // The kubelet's view (KWOK): Ready, with no server behind it.
    expect(pod.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    const notYet = await instance(one, "late", 1);
    expect(notYet.status).toBe(202);
    expect(notYet.body.status).toBe("starting");

    // The server starts while a request waits: the answer follows it within the poll interval.
    const waiting = instance(one, "late", 30).then((r) => ({ ...r, at: performance.now() }));
    const server = await runInstancePod(namespace, name);
    servers.push(server);
    const up = performance.now();
    const ready = await waiting;
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("ready");
    expect(ready.at - up).toBeLessThan(1_000);

    // The first gateway request after ready is answered by gptme-server, never 502.
    const res = await viaGateway(http.url, ready.body.endpoint.path, ready.body.endpoint.token);
    expect(res.status).toBe(200);

    // The sighting is on the Pod: the other replica answers ready from one read, asking nobody.
    const recorded = await core.readNamespacedPod({ name, namespace });
    expect(recorded.metadata?.annotations?.[ANNOTATION_SERVING_SINCE]).toBeTruthy();
    // (Its first request also reads the fleet's token key; this one is not the first.)
    await two.request("/instances", { apiKey: KEY });
    two.counter.reset();
    const elsewhere = await instance(two, "late", 0);
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.body.status).toBe("ready");
    expect(two.counter.calls).toEqual(["get pods"]);
  }, 90_000);

  it("holds a gateway request for a starting instance and answers it once gptme-server is up", async () => {
    const first = await instance(one, "held", 0);
    const { name, endpoint } = first.body;
    await podIpOf(namespace, name);
    one.counter.reset();
    const sent = performance.now();
    // Five clients at once, before the server runs: every one is held, none refused.
    const held = Array.from({ length: 5 }, () =>
      viaGateway(http.url, endpoint.path, endpoint.token).then((r) => ({
        status: r.status,
        at: performance.now(),
      })),
    );
    // Held for seconds, yet no API call per ask: none at all while the requests wait.
    await new Promise((r) => setTimeout(r, 500));
    const whileHeld = one.counter.calls.length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(one.counter.calls.length).toBe(whileHeld);
    const server = await runInstancePod(namespace, name);
    servers.push(server);
    const up = performance.now();
    const answers = await Promise.all(held);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.at - up).toBeLessThan(1_000);
    }
    expect(up - sent).toBeGreaterThan(1_000);
    // Once it answers: the one write that records the sighting (patch pods), the first use's
    // activity with the Pod now running (PHASE follows the Pod: patch clientpods, then its
    // mirror on the Pod), and no reads.
    expect(one.counter.calls.slice(whileHeld).sort()).toEqual([
      "patch clientpods",
      "patch pods",
      "patch pods",
    ]);
  }, 90_000);

  it("answers 503 instance_starting once GATEWAY_HOLD passes with nothing answering", async () => {
    const first = await instance(shortHold, "silent", 0);
    const { name, endpoint } = first.body;
    await podIpOf(namespace, name);
    const sent = performance.now();
    const res = await viaGateway(shortHttp.url, endpoint.path, endpoint.token);
    const took = performance.now() - sent;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect((await res.json()).code).toBe("instance_starting");
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(3_000);
  }, 30_000);
});
