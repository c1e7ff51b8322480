import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import {
  adminKubeConfig,
  createNamespace,
  deleteNamespace,
  httpGet,
  installTemplate,
  ROOT,
  say,
  startHandler,
} from "./lib.js";
import { measureLevels, type PathStats, proxiedInstance, startProcess } from "./proxy-lib.js";

/** One concurrency level: each path's figures, pooled over the rounds. */
export interface PreviewLevel {
  concurrency: number;
  /** The minimal upstream's `/ping`, straight to the pod. */
  apiDirect: PathStats;
  /** The same through the instance gateway (API traffic). */
  apiGateway: PathStats;
  /** The minimal upstream's `/preview/<port>/ping`, straight to the pod. */
  previewDirect: PathStats;
  /** The same through the preview host. */
  previewHost: PathStats;
  /** The real gptme-server's `/preview/<port>/ping` (its proxy to an app), straight. */
  gptmeDirect: PathStats;
  /** The same through the preview host. */
  gptmeHost: PathStats;
}

const KEY = "bench-previews-key-01";
const DOMAIN = "preview.localhost";
const ROUNDS = 2;
const APP_PORT = 5173;

/** Follows a preview sign-in link against the handler (the Host is the preview host). */
function signIn(handlerUrl: string, link: string): Promise<string> {
  const url = new URL(link);
  const target = new URL(handlerUrl);
  return new Promise((resolveCookie, reject) => {
    http
      .get(
        {
          host: target.hostname,
          port: target.port,
          path: url.pathname + url.search,
          headers: { host: url.host },
        },
        (res) => {
          res.resume();
          const cookie = String([res.headers["set-cookie"] ?? ""].flat()[0]).split(";")[0];
          if (res.statusCode !== 302 || !cookie) reject(new Error(`sign-in: ${res.statusCode}`));
          else resolveCookie(cookie);
        },
      )
      .on("error", reject);
  });
}

/**
 * What a preview host adds: a request through `<port>-<name>.<PREVIEW_DOMAIN>` (session check,
 * instance lookup, activity, the gateway's proxy) against the same request to the pod's
 * `/preview/<port>/` directly, beside what the instance gateway adds to API traffic, in the
 * same run; against a minimal upstream (the proxy's own ceiling) and the real gptme-server
 * proxying to an app, as in production.
 */
export async function previewsBench(levels: number[], requests: number): Promise<PreviewLevel[]> {
  const namespace = await createNamespace("bench-previews");
  await installTemplate(namespace);
  const handler = await startHandler(namespace, { PREVIEW_DOMAIN: DOMAIN });
  const procs: ChildProcess[] = [];
  let app: http.Server | undefined;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  try {
    const instance = (id: string) => proxiedInstance(handler.url, namespace, KEY, id);
    const link = async (id: string) => {
      const { status, body } = await new Promise<{ status: number; body: string }>((ok, fail) => {
        const req = http.request(
          `${handler.url}/instances/${id}/previews/${APP_PORT}`,
          { method: "POST", headers: { "x-api-key": KEY } },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => ok({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on("error", fail);
        req.end();
      });
      if (status !== 200) throw new Error(`preview link ${id}: ${status} ${body}`);
      return (JSON.parse(body) as { url: string }).url;
    };
    const mini = await instance("mini");
    const gptme = await instance("gptme");
    const miniUrl = `http://${mini.connection.host}:5700`;
    procs.push(
      await startProcess(
        process.execPath,
        [resolve(ROOT, ".bench/scripts/bench/upstream.js"), mini.connection.host, "5700"],
        {},
        async () => (await httpGet(`${miniUrl}/ping`)).status === 200,
      ),
    );
    // The app an agent started inside the gptme instance: on the pod's loopback, which for a
    // KWOK pod is this machine's 127.0.0.1.
    const body = JSON.stringify({ ok: true });
    app = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
    });
    await new Promise<void>((r) => app?.listen(APP_PORT, "127.0.0.1", r));
    say(`previews: app on 127.0.0.1:${(app.address() as AddressInfo).port}`);
    const gptmeBin = execFileSync("bash", [resolve(ROOT, "scripts/gptme-server.sh")], {
      encoding: "utf8",
    }).trim();
    const pod = await core.readNamespacedPod({ name: gptme.name, namespace });
    const ref = pod.spec?.containers[0]?.env?.find((e) => e.name === "GPTME_SERVER_TOKEN")
      ?.valueFrom?.secretKeyRef;
    const secret = await core.readNamespacedSecret({ name: ref?.name ?? "", namespace });
    const token = Buffer.from(secret.data?.token ?? "", "base64").toString();
    const gptmeUrl = `http://${gptme.connection.host}:5700`;
    procs.push(
      await startProcess(
        gptmeBin,
        ["serve", "--host", gptme.connection.host, "--port", "5700"],
        { HOME: mkdtempSync(join(tmpdir(), "bench-gptme-")), GPTME_SERVER_TOKEN: token },
        async () => (await httpGet(`${gptmeUrl}/api/v2/server/health`)).status === 200,
      ),
    );

    const miniCookie = await signIn(handler.url, await link("mini"));
    const gptmeCookie = await signIn(handler.url, await link("gptme"));
    const previewHost = (name: string) => `${APP_PORT}-${name}.${DOMAIN}`;
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const paths = {
      apiDirect: { url: `${miniUrl}/ping`, headers: {} },
      apiGateway: {
        url: `${handler.url}${mini.endpoint.path}/ping`,
        headers: auth(mini.endpoint.token),
      },
      previewDirect: {
        url: `${miniUrl}/preview/${APP_PORT}/ping`,
        headers: auth(mini.endpoint.token),
      },
      previewHost: {
        url: `${handler.url}/ping`,
        headers: { host: previewHost(mini.name), cookie: miniCookie },
      },
      gptmeDirect: { url: `${gptmeUrl}/preview/${APP_PORT}/ping`, headers: auth(token) },
      gptmeHost: {
        url: `${handler.url}/ping`,
        headers: { host: previewHost(gptme.name), cookie: gptmeCookie },
      },
    } as const;
    // gptme-server (Flask, a thread and a new upstream connection per request) is far slower.
    const requestsOf = (p: keyof typeof paths) =>
      p.startsWith("gptme") ? Math.max(200, Math.floor(requests / 5)) : requests;
    const results: PreviewLevel[] = await measureLevels(
      paths,
      levels,
      ROUNDS,
      requestsOf,
      (concurrency, level) =>
        say(
          `previews c=${concurrency}: api direct ${level.apiDirect.p50.toFixed(2)} ms, gateway ${level.apiGateway.p50.toFixed(2)}; preview direct ${level.previewDirect.p50.toFixed(2)}, host ${level.previewHost.p50.toFixed(2)}; gptme direct ${level.gptmeDirect.p50.toFixed(2)}, host ${level.gptmeHost.p50.toFixed(2)}`,
        ),
    );
    return results;
  } finally {
    for (const proc of procs) proc.kill("SIGTERM");
    app?.close();
    await handler.stop();
    await deleteNamespace(namespace);
  }
}
