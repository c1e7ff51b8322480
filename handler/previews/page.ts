import type { IncomingMessage, ServerResponse } from "node:http";
import type { ErrorAnswer } from "../errors/answer.js";
import { sendAnswer } from "../gateway/refusal.js";

/** A refusal on a preview host: a 401 to a browser is a page saying where to sign in. */
export function refuse(req: IncomingMessage, res: ServerResponse, answer: ErrorAnswer): void {
  const acceptsHtml = /\btext\/html\b/i.test(req.headers.accept ?? "");
  if (answer.status !== 401 || res.headersSent || !acceptsHtml) {
    sendAnswer(res, answer);
    return;
  }
  const page = signInPage();
  res.writeHead(401, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(page),
    "cache-control": "no-store",
  });
  res.end(page);
}

/** The page a browser gets on a preview host it is not signed in to. */
export function signInPage(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: sign-in needed</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}</style>
</head>
<body>
<h1>This preview needs sign-in</h1>
<p>Previews of the apps running in a gptme instance open only for its owner.</p>
<p>Open this preview from your gptme client (its <em>Open preview</em> link): that signs this
browser in to it.</p>
<p>A link works once and for a short time; if it has expired, open the preview again.</p>
</body>
</html>
`;
}
