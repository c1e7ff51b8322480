import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** What the stub streams back to one request: tokens, one every `delayMs`. */
export interface StubReply {
  tokens: string[];
  delayMs: number;
}

export interface ChatStub {
  /** For gptme's `local/<model>` provider: OPENAI_BASE_URL. */
  baseUrl: string;
  /** Each completion asked for: the last message gptme sent, when it began and ended. */
  completions: { lastMessage: string; startedAt: number; endedAt?: number }[];
  close(): Promise<void>;
}

/**
 * An OpenAI-compatible chat-completions endpoint on loopback that streams its answer slowly:
 * a stand-in for the LLM provider, which is outside the fleet, so that a real gptme-server
 * generates for as long as a test needs. `reply` chooses the answer from the last message
 * gptme sent (the user's, or a tool's output).
 */
export async function startChatStub(reply: (lastMessage: string) => StubReply): Promise<ChatStub> {
  const completions: ChatStub["completions"] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    if (!req.url?.endsWith("/chat/completions")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "slow", object: "model" }] }));
      return;
    }
    const messages = (JSON.parse(body) as { messages: { role: string; content: unknown }[] })
      .messages;
    // gptme appends a system note on the token budget; the message answered is before it.
    const last = messages
      .map((m) => textOf(m.content))
      .filter((text) => !text.includes("<budget:token_budget>"))
      .at(-1);
    const completion = {
      lastMessage: last ?? "",
      startedAt: Date.now(),
    } as ChatStub["completions"][number];
    completions.push(completion);
    const { tokens, delayMs } = reply(completion.lastMessage);
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({
        id: "stub",
        object: "chat.completion.chunk",
        created: Math.floor(Date.now() / 1000),
        model: "slow",
        choices: [{ index: 0, delta, finish_reason: finish }],
      })}\n\n`;
    for (const token of tokens) {
      if (res.destroyed) return;
      res.write(chunk({ role: "assistant", content: token }, null));
      await new Promise((r) => setTimeout(r, delayMs));
    }
    res.write(chunk({}, "stop"));
    res.end("data: [DONE]\n\n");
    completion.endedAt = Date.now();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    completions,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A message's text: a string, or the text parts of a list of content parts. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: { text?: unknown }) => (typeof part.text === "string" ? part.text : ""))
    .join("");
}
