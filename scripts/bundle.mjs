// The images ship one file per binary: esbuild bundles each entry with the production code
// of its dependencies (only what runs), so the final image needs no node_modules. Code loaded
// only on demand (client-node, for a kubeconfig that needs its plugins) goes in a chunk file
// of its own beside them, read only when it is needed.
// Usage: node scripts/bundle.mjs [outdir] (default: bundle/)
import { createRequire } from "node:module";
import { build } from "esbuild";

// whatwg-url (under client-node's node-fetch) requires "punycode": Node's own module is
// deprecated and warns on stderr when required from outside node_modules, as a bundle is
// (the reaper's log then holds a line that is not JSON). The userland package is the same
// code; esbuild takes a Node built-in name as external before any alias, so a resolver
// points it there.
const userlandPunycode = {
  name: "userland-punycode",
  setup(build) {
    const path = createRequire(import.meta.url).resolve("punycode/punycode.js");
    build.onResolve({ filter: /^punycode$/ }, () => ({ path }));
  },
};

const outdir = process.argv[2] ?? "bundle";
await build({
  entryPoints: { "handler/main": "handler/main.ts", "reaper/main": "reaper/main.ts" },
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  target: "node20",
  minify: true,
  // A few dependencies are CommonJS and call require(); ESM has none of its own.
  banner: {
    js: 'import { createRequire as __fleetRequire } from "node:module"; const require = __fleetRequire(import.meta.url);',
  },
  plugins: [userlandPunycode],
  logLevel: "warning",
  legalComments: "none",
});
