#!/usr/bin/env bash
# npm run bench [-- --quick] [-- --only=reaper,warm,cold,storm,memory,signin,previews,pool,plans]: the benchmarks, against
# the local control plane, written to docs/BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cluster-env.sh
source scripts/cluster-env.sh
kubectl() { "$BIN_DIR/kubectl-v$K8S_VERSION" "$@"; }
bash scripts/cluster.sh up
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
# The ClientPod CRD, which a fresh cluster lacks (each section makes its own namespace).
kubectl apply -f k8s/local/fleet-operator/01-crd-clientpods.yaml >/dev/null
kubectl wait --for=condition=Established crd/clientpods.gptme.ai --timeout=60s >/dev/null
npm run --silent build
npx tsc -p tsconfig.scripts.json
node .bench/scripts/bench/main.js "$@"
