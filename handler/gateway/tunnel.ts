import * as http from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ProxyCall } from "./headers.js";

// Upgraded connections are the pod's and the client's alone: never pooled.
const agent = new http.Agent({ keepAlive: false });

/**
 * Carries a WebSocket upgrade to the pod: the upgrade request (already admitted, its headers
 * rewritten), then, once the pod switches protocols, the bytes both ways until either side
 * closes. A pod that answers anything else has its answer handed back as it is. Resolves
 * with the pod's status (0 when it gave none) once the client's socket is closed.
 */
export function tunnel(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  call: ProxyCall,
  headers: http.IncomingHttpHeaders,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve) => {
    let status = 0;
    socket.once("close", () => {
      clearTimeout(timer);
      upstream.destroy();
      resolve(status);
    });
    const upstream = http.request({
      host: call.host,
      port: call.port,
      method: req.method,
      path: call.upstreamPath,
      headers,
      agent,
    });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    upstream.once("upgrade", (answer, podSocket: Socket, podHead: Buffer) => {
      clearTimeout(timer);
      status = answer.statusCode ?? 101;
      podSocket.on("error", () => socket.destroy());
      podSocket.once("close", () => socket.destroy());
      socket.once("close", () => podSocket.destroy());
      podSocket.setTimeout(0);
      podSocket.setNoDelay(true);
      if (podHead.length) podSocket.unshift(podHead);
      socket.write(headOf(answer));
      if (head.length) podSocket.write(head);
      podSocket.pipe(socket).pipe(podSocket);
    });
    upstream.once("response", (answer) => {
      clearTimeout(timer);
      status = answer.statusCode ?? 0;
      socket.write(headOf(answer));
      answer.pipe(socket);
    });
    upstream.once("error", () => socket.destroy());
    upstream.end();
  });
}

/** A response's status line and headers, as the pod sent them. */
function headOf(answer: http.IncomingMessage): string {
  let head = `HTTP/${answer.httpVersion} ${answer.statusCode} ${answer.statusMessage}\r\n`;
  const raw = answer.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}
