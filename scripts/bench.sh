#!/usr/bin/env bash
# npm run bench [-- --quick] [-- --only=reaper,warm,cold,storm,memory]: the benchmarks, against
# the local control plane, written to docs/BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/cluster.sh up
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
npm run --silent build
npx tsc -p tsconfig.bench.json
node .bench/scripts/bench/main.js "$@"
