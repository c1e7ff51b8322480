// The images ship one file per binary: esbuild bundles each entry with the production code
// of its dependencies (only what runs), so the final image needs no node_modules.
// Usage: node scripts/bundle.mjs [outdir] (default: bundle/)
import { build } from "esbuild";

const outdir = process.argv[2] ?? "bundle";
await build({
  entryPoints: { "handler/main": "handler/main.ts", "reaper/main": "reaper/main.ts" },
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  // A few dependencies are CommonJS and call require(); ESM has none of its own.
  banner: {
    js: 'import { createRequire as __fleetRequire } from "node:module"; const require = __fleetRequire(import.meta.url);',
  },
  logLevel: "warning",
  legalComments: "none",
});
