import type { IncomingMessage, ServerResponse } from "node:http";
import { listen } from "listhen";
import { describe, expect, it } from "vitest";
import { onlyRequestListener } from "./connections.js";

describe("onlyRequestListener", () => {
  it("leaves the handler as the server's only request listener, which still answers", async () => {
    const handle = (_req: IncomingMessage, res: ServerResponse) => res.end("ok");
    const listener = await listen(handle, {
      port: 0,
      hostname: "127.0.0.1",
      isProd: true,
      autoClose: false,
      showURL: false,
      qr: false,
    });
    try {
      // listhen's own: the handler, and http-shutdown's.
      expect(listener.server.listeners("request")).toHaveLength(2);
      onlyRequestListener(listener.server, handle);
      expect(listener.server.listeners("request")).toEqual([handle]);
      const answer = await fetch(listener.url);
      expect(await answer.text()).toBe("ok");
    } finally {
      await listener.close();
    }
  });
});
