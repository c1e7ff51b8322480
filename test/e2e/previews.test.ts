import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { eventually } from "../support/cluster.js";
import { cookiePair, previewRequest } from "../support/preview.js";
import { type Body, deleteInstance, exec, getInstance, podNameOf } from "./support/fleet.js";

const KEY = "e2e-preview-key-000001";
const APP_PORT = 8765;

// An app started inside the real gptme-server container (as an agent's shell tool would),
// reached from outside through Traefik and its preview host: the deployed handler, the pod's
// own gptme-server /preview/<port>/ proxy, and the container's loopback.
// With the warm pool on (as deployed), the instance is usually a claimed member: its preview
// host names the instance, its Pod keeps the member's name.
describe("a preview of an app inside the real gptme-server container", () => {
  let instance: Body;
  beforeAll(async () => {
    const { status, body } = await getInstance(KEY, "preview");
    expect(status, JSON.stringify(body)).toBe(200);
    instance = body;
    exec(podNameOf(instance), "gptme-server", [
      "sh",
      "-c",
      `mkdir -p /tmp/site && echo '<h1>made inside the container</h1>' > /tmp/site/index.html && ` +
        `nohup python3 -m http.server ${APP_PORT} --bind 127.0.0.1 --directory /tmp/site >/dev/null 2>&1 &`,
    ]);
  }, 120_000);
  afterAll(async () => {
    if (instance?.name) await deleteInstance(instance.name);
  });

  it("opens after the sign-in link, through Traefik and the preview host", async () => {
    const traefik = inject("traefikUrl");
    const res = await fetch(`${traefik}/api/v1/${KEY}/instances/preview/previews/${APP_PORT}`, {
      method: "POST",
    });
    expect(res.status).toBe(200);
    const link = new URL(((await res.json()) as { url: string }).url);
    expect(link.hostname).toBe(`${APP_PORT}-${instance.name}.preview.localhost`);
    const signedIn = await previewRequest(traefik, link.host, link.pathname + link.search);
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.location).toBe("/");
    const cookie = cookiePair(signedIn.headers["set-cookie"]);
    const page = await eventually(async () => {
      const answer = await previewRequest(traefik, link.host, "/", { headers: { cookie } });
      return answer.status === 200 ? answer : undefined;
    }, "the app inside the container to answer");
    expect(page.body).toContain("<h1>made inside the container</h1>");
    expect(page.headers["set-cookie"]).toBeUndefined();
    expect((await previewRequest(traefik, link.host, "/")).status).toBe(401);
  });
});
