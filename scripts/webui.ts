// npm run dev's web UI: gptme's own (from the pinned wheel) on its own loopback origin,
// pointed at the fleet for sign-in codes.
//
// Usage: node .bench/scripts/webui.js GPTME_SERVER_BIN PORT FLEET_BASE_URL
import { serveWebUi, webUiDistOf } from "./lib/webui.js";

const [bin, port, fleet] = process.argv.slice(2);
if (!bin || !port || !fleet)
  throw new Error("usage: webui.js GPTME_SERVER_BIN PORT FLEET_BASE_URL");
const ui = await serveWebUi(webUiDistOf(bin), { port: Number(port), fleetBaseUrl: fleet });
process.stderr.write(`[webui] gptme's web UI on ${ui.url} (fleet: ${fleet})\n`);
