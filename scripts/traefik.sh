#!/usr/bin/env bash
# Runs the locally built Traefik (v$TRAEFIK_VERSION, built once like the control plane) on this
# machine against the local control plane: its Kubernetes CRD provider reads the repo's
# IngressRoute and Middleware, and the apikey plugin is loaded from source (Yaegi).
#
# Usage: scripts/traefik.sh PORT NAMESPACE   (KUBECONFIG must point at the cluster)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-env.sh
source "$ROOT/scripts/cluster-env.sh"
port=${1:?usage: traefik.sh PORT NAMESPACE}
namespace=${2:?usage: traefik.sh PORT NAMESPACE}
: "${KUBECONFIG:?KUBECONFIG must point at the cluster}"

bin="$BIN_DIR/traefik-v$TRAEFIK_VERSION"
[ -x "$bin" ] || "$ROOT/scripts/cluster-build.sh" traefik >/dev/null
# Traefik reads local plugins from ./plugins-local/src/<moduleName>.
cd "$ROOT/k8s/local/traefik"
# ExternalName services let a route reach a handler running on this machine (localhost).
exec "$bin" \
  --entryPoints.web.address="127.0.0.1:$port" \
  --providers.kubernetesCRD \
  --providers.kubernetesCRD.namespaces="$namespace" \
  --providers.kubernetesCRD.allowExternalNameServices=true \
  --experimental.localPlugins.apikey.moduleName=github.com/gptme/traefik-apikey-from-path \
  --log.level="${TRAEFIK_LOG_LEVEL:-WARN}"
