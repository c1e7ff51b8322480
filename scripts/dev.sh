#!/usr/bin/env bash
# npm run dev: the local control plane (built and started if needed), the manifests applied,
# and the handler running on this machine against it, with pretty logs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cluster-env.sh
source scripts/cluster-env.sh

say() { printf '[dev] %s\n' "$*" >&2; }

bash scripts/cluster.sh up
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
say "applying the Traefik CRDs and k8s/local/fleet-operator/"
kubectl() { "$BIN_DIR/kubectl-v$K8S_VERSION" "$@"; }
kubectl apply --server-side --force-conflicts -f k8s/local/traefik/00-crds.yaml >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply -f k8s/local/fleet-operator/ >/dev/null
say "building"
npm run --silent build

export NAMESPACE=gptme-fleet
export HTTP_PORT=${HTTP_PORT:-8080}
export ADMIN_TOKEN=${ADMIN_TOKEN:-dev-admin-token}
cat >&2 <<MSG

[dev] handler on http://127.0.0.1:$HTTP_PORT (namespace $NAMESPACE, admin token "$ADMIN_TOKEN"). Try:

  curl -s -H 'X-API-Key: my-secret-key-123' http://127.0.0.1:$HTTP_PORT/instances/default

[dev] kubectl --kubeconfig .cluster/kubeconfig -n $NAMESPACE get cpod,pods   # what it made
[dev] Ctrl-C stops the handler; 'npm run cluster -- down' stops the cluster.

MSG
node dist/handler/main.js | npx --no-install pino-pretty --colorize --translateTime SYS:HH:MM:ss.l
