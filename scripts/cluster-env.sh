# Versions and cache location of the local control plane, sourced by the cluster scripts.
# Change a version here and the next 'npm run cluster -- up' builds it (binaries are keyed
# by version, so old and new live side by side in the cache).
K8S_VERSION=1.36.3
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
TRAEFIK_VERSION=3.6.12
# The real node (npm run cluster -- up --real-node): 1.35 is the last kubelet minor that
# supports containerd 1.x (Debian's). kube-router v2.1.0 is the newest the module proxy serves.
NODE_K8S_VERSION=1.35.4
KUBE_ROUTER_VERSION=2.1.0

CACHE_DIR=${FLEET_CACHE_DIR:-$HOME/.cache/gptme-fleet}
BIN_DIR="$CACHE_DIR/bin"
SRC_DIR="$CACHE_DIR/src"
GPTME_VERSION=0.35.1
