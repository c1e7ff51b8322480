import type { KubeTransport } from "./transport.js";

/** A watch event's type, as the API server sends it. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/**
 * Watches the collection at `path` (its query names what and from which resourceVersion):
 * `onEvent` for each event as it arrives, then `onEnd` once, however the watch ends (the
 * server closes it at its timeout, it fails, or it is aborted). Returns the controller that
 * aborts it. Nothing is called before this returns.
 */
export function watchObjects<T>(
  transport: KubeTransport,
  path: string,
  onEvent: (type: WatchEventType, object: T) => void,
  onEnd: (error?: Error) => void,
): AbortController {
  const controller = new AbortController();
  let ended = false;
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    controller.abort();
    onEnd(error);
  };
  const separator = path.includes("?") ? "&" : "?";
  transport.stream(`${path}${separator}watch=true`, controller.signal).then(
    (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        end(new Error(`the watch was answered ${response.statusCode}`));
        return;
      }
      // One JSON object a line; a line may arrive in pieces.
      let pending = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        pending += chunk;
        let newline = pending.indexOf("\n");
        while (newline !== -1 && !ended) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          newline = pending.indexOf("\n");
          if (!line) continue;
          let event: { type: WatchEventType; object: T };
          try {
            event = JSON.parse(line);
          } catch (error) {
            end(error as Error);
            return;
          }
          onEvent(event.type, event.object);
        }
      });
      response.on("end", () => end());
      response.on("error", (error) => end(error));
      response.on("close", () => end());
    },
    (error: Error) => end(error),
  );
  return controller;
}
