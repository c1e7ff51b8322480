// npm run dev's model: an OpenAI-compatible endpoint on this machine (scripts/lib/model-endpoint.ts)
// that the dev plan's instances use as their provider, with the key it checks read from a file
// (the same file the Secret fleet-model-credentials is made from), never from the command line.
//
// Usage: node .bench/scripts/model-endpoint.js PORT MODEL KEY_FILE   (MODEL_ENDPOINT_HOST: where
// to listen, 127.0.0.1 by default; the real node's e2e runs it in a Pod on 0.0.0.0)
import { readFileSync } from "node:fs";
import { startModelEndpoint } from "./lib/model-endpoint.js";

const [port, model, keyFile] = process.argv.slice(2);
if (!port || !model || !keyFile) throw new Error("usage: model-endpoint.js PORT MODEL KEY_FILE");
const endpoint = await startModelEndpoint({
  keys: [readFileSync(keyFile, "utf8").trim()],
  models: [model],
  port: Number(port),
  host: process.env.MODEL_ENDPOINT_HOST ?? "127.0.0.1",
});
process.stderr.write(
  `[model] an OpenAI-compatible stand-in serving ${model} at ${endpoint.baseUrl}\n`,
);
