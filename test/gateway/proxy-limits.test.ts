import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, lastActivityOf } from "../support/cluster.js";
import {
  GATEWAY_TEST_ENV,
  type InstanceAtPodServer,
  instanceAtPodServer,
} from "../support/pod-server.js";

const KEY = "gateway-proxy-key-01";

/**
 * The proxy's bounds and failures, seen from a minimal HTTP server at the instance's loopback
 * pod IP (test/support/pod-server.ts): request bodies, the wait for headers, open streams,
 * aborted clients, and a pod that goes away or never listens.
 */
describe("gateway proxy: limits, timeouts, aborts and failures", () => {
  let at: InstanceAtPodServer;

  beforeAll(async () => {
    at = await instanceAtPodServer("gwlimits", KEY, GATEWAY_TEST_ENV);
  });

  afterAll(() => at?.close());

  it("refuses bodies over PROXY_MAX_BODY, with or without a length, before the pod has them", async () => {
    const before = at.pod.received.length;
    const sized = await fetch(at.url("/api/v2/upload"), {
      method: "POST",
      headers: at.auth(),
      body: "x".repeat(2048),
    });
    expect(sized.status).toBe(413);
    expect(((await sized.json()) as { code: string }).code).toBe("body_too_large");
    expect(at.pod.received.length).toBe(before);

    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode("y".repeat(512)));
        controller.close();
      },
    });
    const streamed = await fetch(at.url("/api/v2/upload"), {
      method: "POST",
      headers: at.auth(),
      body: chunks,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    // Within the bound, a streamed body arrives whole.
    const small = await fetch(at.url("/api/v2/upload"), {
      method: "POST",
      headers: at.auth(),
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("z".repeat(1000)));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(small.status).toBe(200);
    expect(((await small.json()) as { bytes: number }).bytes).toBe(1000);
  });

  it("answers 504 instance_timeout when the pod sends no headers within PROXY_TIMEOUT", async () => {
    const started = performance.now();
    const response = await fetch(at.url("/hang"), { headers: at.auth() });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { code: string }).code).toBe("instance_timeout");
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(performance.now() - started).toBeLessThan(3_000);
    // ...and frees the pod's connection.
    await eventually(
      async () => ([...at.pod.open].every((r) => r.destroyed) ? true : undefined),
      "upstream closed",
    );
  });

  it("keeps an open stream alive past PROXY_TIMEOUT and refreshes lastActivity while it is open", async () => {
    // The ClientPod's lastActivity: the truth the reaper reads (the Pod's mirror is not
    // rewritten for activity alone).
    const mirror = () => lastActivityOf(at.namespace, at.instance.name);
    const abort = new AbortController();
    const response = await fetch(at.url("/stream"), { headers: at.auth(), signal: abort.signal });
    const reader = response.body?.getReader();
    const first = await mirror();
    let bytes = 0;
    const until = Date.now() + 3_500;
    while (Date.now() < until) bytes += (await reader?.read())?.value?.length ?? 0;
    expect(bytes).toBeGreaterThan(0);
    const during = await mirror();
    expect(Date.parse(during)).toBeGreaterThan(Date.parse(first));
    abort.abort();
    await eventually(
      async () => (at.pod.open.size === 0 ? true : undefined),
      "upstream stream closed",
    );
    expect(at.handler.fleet.gateway.openExchanges).toBe(0);
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await mirror();
    // One write may have been on its way when the stream closed; none after that.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await mirror()).toBe(after);
  });

  it("frees the pod's side of every aborted stream: 1,000 aborts leave nothing open", async () => {
    const listenersBefore = process.listenerCount("exit");
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const abort = new AbortController();
          const response = await fetch(at.url("/stream"), {
            headers: at.auth(),
            signal: abort.signal,
          });
          await response.body?.getReader().read();
          abort.abort();
        }),
      );
    }
    await eventually(
      async () => (at.pod.open.size === 0 ? true : undefined),
      "all upstream streams closed",
      10_000,
    );
    await eventually(
      async () => (at.handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "all gateway exchanges closed",
    );
    const connections = await new Promise<number>((resolve) =>
      at.pod.server.getConnections((_e, n) => resolve(n)),
    );
    expect(connections).toBeLessThanOrEqual(1);
    expect(process.listenerCount("exit")).toBe(listenersBefore);
  });

  it("ends the client's stream when the pod goes away", async () => {
    const response = await fetch(at.url("/stream"), { headers: at.auth() });
    const reader = response.body?.getReader();
    expect((await reader?.read())?.done).toBe(false);
    const ended = (async () => {
      try {
        for (;;) if ((await reader?.read())?.done) return "done";
      } catch {
        return "cut";
      }
    })();
    await at.pod.close();
    expect(["done", "cut"]).toContain(await ended);
    await eventually(
      async () => (at.handler.fleet.gateway.openExchanges === 0 ? true : undefined),
      "the exchange to close",
    );
    // The same server listens again, for the tests after this one.
    await at.pod.listen();
  });

  it("answers 502 instance_unreachable when nothing listens at the pod", async () => {
    await at.pod.close();
    const response = await fetch(at.url("/api/v2/x"), { headers: at.auth() });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { code: string }).code).toBe("instance_unreachable");
    // The same server listens again, for the tests after this one.
    await at.pod.listen();
  });
});
