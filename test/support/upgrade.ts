import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * Sends a WebSocket upgrade request on a raw socket and resolves with the first bytes of the
 * answer: enough to see a 101 (or a refusal) and then exchange bytes both ways.
 */
export function rawUpgrade(
  base: string,
  path: string,
  headers: string,
  host?: string,
): Promise<{ head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const target = new URL(base);
    const socket = connect(Number(target.port), target.hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host ?? target.host}\r\n` +
          "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${headers}\r\n`,
      );
    });
    socket.once("data", (data) => resolve({ head: data.toString(), socket }));
    socket.once("error", reject);
  });
}

/** A TCP server that answers any upgrade with 101 and then echoes every byte back. */
export async function echoUpgradeServer(host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.once("data", () => {
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      );
      socket.pipe(socket);
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as { port: number }).port };
}
