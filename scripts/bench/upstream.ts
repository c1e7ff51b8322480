import { createServer } from "node:http";

/**
 * The minimal upstream (the proxy's own ceiling), run as its own process at an instance's
 * loopback pod IP: GET /ping answers a small JSON body; GET /events is an event stream
 * writing `{"seq": n, "t": <epoch ms>}` every `EVENT_INTERVAL_MS`, so a reader can tell
 * latency and loss.
 */
const [host = "127.0.0.1", port = "5700"] = process.argv.slice(2);
const EVENT_INTERVAL_MS = Number(process.env.EVENT_INTERVAL_MS ?? 20);
const body = JSON.stringify({ ok: true });
const now = () => performance.timeOrigin + performance.now();

createServer((req, res) => {
  if (req.url?.startsWith("/events")) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let seq = 0;
    const timer = setInterval(() => {
      res.write(`data: {"seq":${seq++},"t":${now()}}\n\n`);
    }, EVENT_INTERVAL_MS);
    res.on("close", () => clearInterval(timer));
    return;
  }
  res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}).listen(Number(port), host, () => process.stdout.write("listening\n"));
