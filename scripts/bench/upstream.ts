import { createServer, type ServerResponse } from "node:http";

/**
 * The minimal upstream (the proxy's own ceiling), run as its own process at an instance's
 * loopback pod IP: GET /ping answers a small JSON body; GET /events is an event stream
 * writing `{"seq": n, "t": <epoch ms>}` at once and every `EVENT_INTERVAL_MS`, so a reader can tell
 * latency and loss. GET /events/shared is one stream for all its readers: the same event
 * written to each at once (the order rotated), so readers along different paths can compare
 * each event's arrival.
 */
const [host = "127.0.0.1", port = "5700"] = process.argv.slice(2);
const EVENT_INTERVAL_MS = Number(process.env.EVENT_INTERVAL_MS ?? 20);
const body = JSON.stringify({ ok: true });
const now = () => performance.timeOrigin + performance.now();

/** Readers of the shared stream: each event goes to all of them at the same moment. */
const shared = new Set<ServerResponse>();
let sharedSeq = 0;
setInterval(() => {
  if (shared.size === 0) return;
  const readers = [...shared];
  const first = sharedSeq % readers.length;
  const frame = `data: {"seq":${sharedSeq++},"t":${now()}}\n\n`;
  for (let i = 0; i < readers.length; i++) readers[(first + i) % readers.length]?.write(frame);
}, EVENT_INTERVAL_MS).unref();

createServer((req, res) => {
  if (req.url?.startsWith("/events/shared")) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    shared.add(res);
    res.on("close", () => shared.delete(res));
    return;
  }
  if (req.url?.startsWith("/events")) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let seq = 0;
    const send = () => res.write(`data: {"seq":${seq++},"t":${now()}}\n\n`);
    // The first event at once (a reader can time the stream's opening), then one per interval.
    send();
    const timer = setInterval(send, EVENT_INTERVAL_MS);
    res.on("close", () => clearInterval(timer));
    return;
  }
  res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}).listen(Number(port), host, () => process.stdout.write("listening\n"));
