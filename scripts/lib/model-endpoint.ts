import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// An OpenAI-compatible model endpoint on this machine: a stand-in for the LLM provider (or an
// LLM proxy) a plan's instances use, so that tests and `npm run dev` give gptme-server a
// model without the network. It checks the bearer key it was given, as a provider does, and
// answers what gptme-server 0.35.1 asks of an OpenAI-compatible server (read from its
// llm_openai.py and llm_gptme.py): `GET <base>/models` when it resolves a model, and
// `POST <base>/chat/completions`, streamed (`stream: true`, server-sent `chat.completion.chunk`
// frames ending with `data: [DONE]`) or not. Its answer quotes the last user message, so a
// test sees which message it answered and through which model.

export interface ModelEndpointOptions {
  /** Bearer keys it accepts (a provider's API keys); anything else is 401. */
  keys: readonly string[];
  /** Model ids it serves (`GET /models`); a completion for another model is 404. */
  models: readonly string[];
  /** Where to listen; 127.0.0.1 and any free port by default. */
  host?: string;
  port?: number;
  /** The URL path before `/models` and `/chat/completions`. */
  basePath?: string;
}

/** What one completion was asked: by which key (its index in `keys`, never the key), for what. */
export interface CompletionSeen {
  keyIndex: number;
  model: string;
  stream: boolean;
  lastUserMessage: string;
  /** The answer it gave. */
  reply: string;
}

export interface ModelEndpoint {
  /** The OpenAI base URL (`http://host:port/v1`). */
  baseUrl: string;
  completions: CompletionSeen[];
  /** Requests refused for a missing or unknown key. */
  refused: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * The stand-in's answer to a message: what a test (or a person in `npm run dev`) reads back.
 * gptme also asks for a conversation's title; that gets a short one.
 */
export const replyTo = (model: string, message: string): string =>
  message.includes("title for this conversation")
    ? `Chat with ${model}`
    : `Hello from ${model}. You said: ${message.trim().slice(0, 200)}`;

export async function startModelEndpoint(options: ModelEndpointOptions): Promise<ModelEndpoint> {
  const basePath = (options.basePath ?? "/v1").replace(/\/+$/, "");
  const digests = options.keys.map((key) => createHash("sha256").update(key).digest());
  const completions: CompletionSeen[] = [];
  const endpoint = { completions, refused: 0 };

  const keyIndexOf = (req: IncomingMessage): number => {
    const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
    if (!presented) return -1;
    const digest = createHash("sha256").update(presented).digest();
    return digests.findIndex((known) => timingSafeEqual(known, digest));
  };

  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname.replace(/\/+$/, "");
    let body = "";
    for await (const chunk of req) body += chunk;
    const keyIndex = keyIndexOf(req);
    if (keyIndex < 0) {
      endpoint.refused++;
      return json(res, 401, {
        error: {
          message: "Incorrect API key provided.",
          type: "invalid_request_error",
          code: "invalid_api_key",
        },
      });
    }
    if (req.method === "GET" && path === `${basePath}/models`) {
      return json(res, 200, {
        object: "list",
        data: options.models.map((id) => ({ id, object: "model", created: 0, owned_by: "fleet" })),
      });
    }
    if (req.method === "POST" && path === `${basePath}/chat/completions`) {
      let request: ChatRequest;
      try {
        request = JSON.parse(body) as ChatRequest;
      } catch {
        return json(res, 400, { error: { message: "The body is not JSON.", type: "invalid" } });
      }
      const model = String(request.model ?? "");
      if (!options.models.includes(model)) {
        return json(res, 404, {
          error: { message: `The model ${model} does not exist.`, code: "model_not_found" },
        });
      }
      const lastUserMessage = lastUserText(request.messages ?? []);
      const reply = replyTo(model, lastUserMessage);
      const stream = request.stream === true;
      completions.push({ keyIndex, model, stream, lastUserMessage, reply });
      const created = Math.floor(Date.now() / 1000);
      const usage = { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 };
      if (!stream) {
        return json(res, 200, {
          id: "chatcmpl-fleet",
          object: "chat.completion",
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: reply },
              finish_reason: "stop",
            },
          ],
          usage,
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const frame = (choices: object[], extra: object = {}) =>
        `data: ${JSON.stringify({ id: "chatcmpl-fleet", object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`;
      res.write(
        frame([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
      );
      for (const word of reply.split(/(?<= )/)) {
        res.write(frame([{ index: 0, delta: { content: word }, finish_reason: null }]));
      }
      res.write(frame([{ index: 0, delta: {}, finish_reason: "stop" }]));
      if (request.stream_options?.include_usage) res.write(frame([], { usage }));
      res.end("data: [DONE]\n\n");
      return;
    }
    json(res, 404, { error: { message: `No route ${req.method} ${path}.`, type: "not_found" } });
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const address = server.address() as AddressInfo;
  return {
    get completions() {
      return completions;
    },
    get refused() {
      return endpoint.refused;
    },
    baseUrl: `http://${address.address}:${address.port}${basePath}`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface ChatRequest {
  model?: unknown;
  messages?: { role?: string; content?: unknown }[];
  stream?: unknown;
  stream_options?: { include_usage?: boolean };
}

function json(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** The last user message's text (a string, or the text parts of a list of content parts). */
function lastUserText(messages: NonNullable<ChatRequest["messages"]>): string {
  const content = messages.filter((m) => m.role === "user").at(-1)?.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: { text?: unknown }) => (typeof part.text === "string" ? part.text : ""))
    .join("");
}
