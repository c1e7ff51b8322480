import { Agent, createServer } from "node:http";
import { createProxyServer } from "httpxy";

/**
 * A proxy library bare (no authentication, no lookup), in its own process in front of the
 * minimal upstream: what the library costs before the gateway adds its own work. (h3's
 * fetch-based `proxyRequest` measured 3× httpxy's added latency and was dropped; http-proxy-3
 * 2.x needs Node >= 22.)
 */
const [kind, port = "0", target = "http://127.0.0.1:5700"] = process.argv.slice(2);

if (kind === "httpxy") {
  const proxy = createProxyServer({ target, agent: new Agent({ keepAlive: true }) });
  createServer((req, res) => void proxy.web(req, res)).listen(Number(port), "127.0.0.1", ready);
} else {
  throw new Error(`unknown proxy ${kind}`);
}

function ready() {
  process.stdout.write("listening\n");
}
