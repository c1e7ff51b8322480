import { createServer } from "node:http";
import { H3, proxyRequest } from "h3";
import { toNodeHandler } from "h3/node";
import { createProxyServer } from "httpxy";

/**
 * The proxy candidates, bare (no authentication, no lookup), each its own process in front
 * of the minimal upstream: what each library costs before the gateway adds its own work.
 * http-proxy-3 (Vite's) is not among them: version 2 requires Node >= 22.
 */
const [kind, port = "0", target = "http://127.0.0.1:5700"] = process.argv.slice(2);

if (kind === "h3") {
  const app = new H3().all("/**", (event) => proxyRequest(event, `${target}${event.url.pathname}`));
  createServer(toNodeHandler(app)).listen(Number(port), "127.0.0.1", ready);
} else if (kind === "httpxy") {
  const { Agent } = await import("node:http");
  const proxy = createProxyServer({ target, agent: new Agent({ keepAlive: true }) });
  createServer((req, res) => void proxy.web(req, res)).listen(Number(port), "127.0.0.1", ready);
} else {
  throw new Error(`unknown proxy ${kind}`);
}

function ready() {
  process.stdout.write("listening\n");
}
