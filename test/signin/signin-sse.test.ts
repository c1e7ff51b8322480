import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { adminKubeConfig, eventually } from "../support/cluster.js";
import { listenHandler, startHandler, type TestHandler } from "../support/fleet.js";
import {
  EventStream,
  type GptmeServer,
  runInstancePod,
  startInstanceWithServer,
} from "../support/gptme.js";
import {
  codeOf,
  exchange,
  JSON_BODY,
  KEY,
  login,
  OTHER_KEY,
  SIGNIN_ENV,
  type SignInFleet,
  startSignInFleet,
} from "../support/signin.js";

const SSE_TTL_MS = 2_000;

// Sign-in's event-stream tokens (`sseToken`), on the real control plane and a real
// gptme-server: a pod may take a while to be Ready when the machine is loaded.
describe("event-stream tokens at the gateway", { timeout: 180_000 }, () => {
  let fleet: SignInFleet;
  let namespace: string;
  let replicaA: TestHandler;
  let http: SignInFleet["http"];
  let servers: GptmeServer[];
  let instance: { name: string; endpoint: { path: string; token: string } };
  let base: string;
  /** The session of the conversation the streams below listen to. */
  let session: string;

  async function signIn(instanceId: string, key = KEY) {
    const code = await codeOf(await login(replicaA, instanceId, key));
    return (await exchange(replicaA, { code })).json();
  }

  const events = (sseToken: string, conversation = "sse-chat", at = base) =>
    fetch(
      `${at}/api/v2/conversations/${conversation}/events?token=${encodeURIComponent(sseToken)}`,
    );

  beforeAll(async () => {
    fleet = await startSignInFleet("signin-sse");
    ({ namespace, replicaA, http, servers } = fleet);
    // The instance whose streams the tokens open, its server answering (mock/echo).
    const started = await startInstanceWithServer(
      namespace,
      (wait) => replicaA.request(`/instances/web?wait=${wait}`, { apiKey: KEY }),
      ["--model", "mock/echo"],
    );
    instance = started.instance;
    servers.push(started.server);
    base = `${http.url}${instance.endpoint.path}`;
    const put = await fetch(`${base}/api/v2/conversations/sse-chat`, {
      method: "PUT",
      headers: { ...JSON_BODY, authorization: `Bearer ${instance.endpoint.token}` },
      body: JSON.stringify({ messages: [] }),
    });
    expect(put.status).toBe(200);
    session = ((await put.json()) as { session_id: string }).session_id;
  });

  afterAll(() => fleet?.close());

  it("is accepted on its instance's event streams and refused everywhere else", async () => {
    const { sseToken, userToken } = await signIn("web");
    const abort = new AbortController();
    const stream = await fetch(`${base}/api/v2/conversations/sse-chat/events?token=${sseToken}`, {
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    await new EventStream(stream).next((e) => e.type === "connected", 5_000);
    abort.abort();
    // Which credential the gateway admitted, in its log (never the token itself), once the
    // stream has closed.
    await eventually(
      async () =>
        replicaA.logs.lines
          .map((l) => JSON.parse(l))
          .some((l) => l.route?.startsWith("/api/v1/instances/") && l.credential === "sse-token")
          ? true
          : undefined,
      "the gateway's log line for the stream",
    );
    expect(replicaA.logs.lines.join("\n")).not.toContain(sseToken);
    const refused = [
      await fetch(`${base}/api/v2/conversations?token=${sseToken}`),
      await fetch(`${base}/api/v2/conversations/sse-chat?token=${sseToken}`),
      await fetch(`${base}/api/v2/conversations/sse-chat/step?token=${sseToken}`, {
        method: "POST",
        headers: JSON_BODY,
        body: JSON.stringify({ model: "mock/echo" }),
      }),
      await fetch(`${base}/api/v2/conversations/sse-chat/events`, {
        headers: { authorization: `Bearer ${sseToken}` },
      }),
      await fetch(`${base}/api/v2/conversations/sse-chat/events?token=${sseToken}`, {
        method: "POST",
      }),
    ];
    for (const res of refused) {
      expect(res.status, res.url).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_token");
    }
    // The user token still works everywhere.
    const listed = await fetch(`${base}/api/v2/conversations`, {
      headers: { authorization: `Bearer ${userToken}` },
    });
    expect(listed.status).toBe(200);
  });

  it("is refused on another instance's event streams", async () => {
    const other = await signIn("sse-other", OTHER_KEY);
    const res = await events(other.sseToken);
    expect(res.status).toBe(401);
  });

  it("expires after SSE_TOKEN_TTL, while a stream opened before keeps flowing", async () => {
    const short = startHandler(namespace, {
      ...SIGNIN_ENV,
      SSE_TOKEN_TTL: `${SSE_TTL_MS / 1000}s`,
    });
    const shortHttp = await listenHandler(short);
    const at = `${shortHttp.url}${instance.endpoint.path}`;
    const code = await codeOf(await login(short, "web"));
    const { sseToken, userToken } = await (await exchange(short, { code })).json();
    const abort = new AbortController();
    const res = await fetch(
      `${at}/api/v2/conversations/sse-chat/events?session_id=${session}&token=${sseToken}`,
      { signal: abort.signal },
    );
    expect(res.status).toBe(200);
    const stream = new EventStream(res);
    await stream.next((e) => e.type === "connected", 5_000);
    await new Promise((r) => setTimeout(r, SSE_TTL_MS + 500));
    expect((await events(sseToken, "sse-chat", at)).status).toBe(401);
    const auth = { ...JSON_BODY, authorization: `Bearer ${userToken}` };
    await fetch(`${base}/api/v2/conversations/sse-chat`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ role: "user", content: "after expiry" }),
    });
    await fetch(`${base}/api/v2/conversations/sse-chat/step`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model: "mock/echo", session_id: session }),
    });
    await stream.next(
      (e) => e.type === "generation_complete" && JSON.stringify(e).includes("Echo: after expiry"),
    );
    abort.abort();
    await shortHttp.close();
    short.close();
  });

  it("dies with its instance: a recreated instance refuses it", async () => {
    const { sseToken } = await signIn("recreated");
    const name = instanceNameOf(clientIdOf(KEY), "recreated");
    const first = await runInstancePod(namespace, name);
    const at = `${http.url}/api/v1/instances/${name}`;
    try {
      expect(
        (await fetch(`${at}/api/v2/conversations/x/events?token=${sseToken}`)).status,
      ).not.toBe(401);
    } finally {
      await first.stop();
    }
    await replicaA.request("/instances/recreated", { apiKey: KEY, method: "DELETE" });
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await eventually(
      async () =>
        (await core.readNamespacedPod({ name, namespace }).catch(() => undefined))
          ? undefined
          : true,
      "the old pod to go",
    );
    const { instance: again, server: second } = await startInstanceWithServer(namespace, (wait) =>
      replicaA.request(`/instances/recreated?wait=${wait}`, { apiKey: KEY }),
    );
    servers.push(second);
    expect(again.name).toBe(name);
    const res = await fetch(`${at}/api/v2/conversations/x/events?token=${sseToken}`);
    expect(res.status).toBe(401);
  });
});
