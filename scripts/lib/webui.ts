import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, resolve, sep } from "node:path";

// gptme's own web UI (the built files in the pinned gptme wheel), served on a loopback origin
// of its own as a hosted UI is: every unknown path answers index.html (its deep links, such
// as /chat/<id>, are client-side routes), and index.html tells the UI where the fleet is.

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".mp3": "audio/mpeg",
  ".woff2": "font/woff2",
};

/** The web UI's built files in the venv of a gptme-server binary (`<venv>/bin/gptme-server`). */
export function webUiDistOf(gptmeServerBin: string): string {
  const lib = join(dirname(dirname(gptmeServerBin)), "lib");
  const dist = (existsSync(lib) ? readdirSync(lib) : [])
    .map((python) => join(lib, python, "site-packages/gptme/server/webui-dist"))
    .find((d) => existsSync(join(d, "index.html")));
  if (!dist) throw new Error(`gptme's webui-dist is not in the venv of ${gptmeServerBin}`);
  return dist;
}

/**
 * index.html with `window.__GPTME_WEBUI_ENV__` set before the app's scripts: the UI reads
 * VITE_GPTME_FLEET_BASE_URL from it at run time, the fleet its sign-in codes are exchanged at.
 */
export function indexWithFleet(index: string, fleetBaseUrl: string | undefined): string {
  if (fleetBaseUrl === undefined) return index;
  const env = JSON.stringify({ VITE_GPTME_FLEET_BASE_URL: fleetBaseUrl }).replaceAll(
    "<",
    "\\u003c",
  );
  return index.replace(
    "<head>",
    `<head>\n    <script>window.__GPTME_WEBUI_ENV__ = ${env};</script>`,
  );
}

export interface WebUi {
  server: Server;
  /** The UI's origin, e.g. http://127.0.0.1:5701 */
  url: string;
  close(): Promise<void>;
}

/** Serves the UI from `root` on 127.0.0.1:`port` (0: any free port). */
export async function serveWebUi(
  root: string,
  { port = 0, fleetBaseUrl }: { port?: number; fleetBaseUrl?: string } = {},
): Promise<WebUi> {
  const base = resolve(root);
  const index = indexWithFleet(readFileSync(join(base, "index.html"), "utf8"), fleetBaseUrl);
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://ui").pathname);
    } catch {
      path = "/";
    }
    const file = resolve(base, `.${path}`);
    const isFile = file.startsWith(base + sep) && existsSync(file) && !path.endsWith("/");
    if (!isFile || file === join(base, "index.html")) {
      res.writeHead(200, { "content-type": TYPES[".html"], "cache-control": "no-cache" });
      res.end(index);
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
