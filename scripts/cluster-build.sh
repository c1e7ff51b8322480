#!/usr/bin/env bash
# Builds, once, every binary the local control plane needs, from the Go module proxy
# (no Docker engine and no release-page downloads on these machines). Results are cached
# outside the repository, keyed by version, so only the first run pays for the build.
#
# Usage: scripts/cluster-build.sh            build what is missing, print the bin dir
# Env:   FLEET_CACHE_DIR (default ~/.cache/gptme-fleet)
set -euo pipefail

# shellcheck source=scripts/cluster-env.sh
source "$(dirname "$0")/cluster-env.sh"

say() { printf '[cluster-build] %s\n' "$*" >&2; }
die() { printf '[cluster-build] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 ||
  die "Go is not installed. Install Go >= 1.26 (https://go.dev/doc/install, or 'apt-get install golang' where it is new enough) and run again."
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "$go_minor" -ge 26 ] || die "Go $(go env GOVERSION) is too old: KWOK v$KWOK_VERSION and Kubernetes v$K8S_VERSION need Go >= 1.26."

mkdir -p "$BIN_DIR" "$SRC_DIR"
# One build at a time per cache: two checkouts (or a test run and `npm run dev`) starting at
# once would otherwise build the same binary twice and race to move it into place.
# Taken only when something is to be built: a checkout whose binaries are all cached never
# waits for another's long build (the real node's, say).
lock_for_build() {
  [ -n "${BUILD_LOCKED:-}" ] && return 0
  exec 9>"$CACHE_DIR/.build.lock"
  flock 9
  BUILD_LOCKED=1
}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# Runs a long go command with a heartbeat, so a cold build never looks hung.
run_with_progress() {
  local what=$1; shift
  local log="$SRC_DIR/$what.log" started=$SECONDS
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && say "  $what: still working ($((SECONDS - started))s)$(tail -n 1 "$log" | cut -c1-100 | sed 's/^./: &/')"
  done
  wait "$pid" || { tail -n 30 "$log" >&2; die "building $what failed (full log: $log)"; }
  say "  $what: done in $((SECONDS - started))s"
}

have() { local b; for b in "$@"; do [ -x "$BIN_DIR/$b" ] || return 1; done; }

# Builds Kubernetes commands of one version: k8s.io/kubernetes requires its staging modules
# at v0.0.0 through ./staging replaces, which only work inside its own repository, so a small
# module pins each to the matching v0.X.Y tag.
build_k8s_commands() {
  local version=$1; shift
  local names=("$@")
  local suffixed=("${names[@]/%/-v$version}")
  have "${suffixed[@]}" && return 0
  lock_for_build
  have "${suffixed[@]}" && return 0
  local dir="$SRC_DIR/kubernetes-$version"
  mkdir -p "$dir" && cd "$dir"
  local staging_version="v0.${version#1.}"
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module fleet.local/kubernetes-build"
    echo "go 1.26"
    echo "require k8s.io/kubernetes v$version"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" |
      awk -v v="$staging_version" '{ print "replace " $1 " => " $1 " " v }'
  } >go.mod
  local pkgs=() b
  # Each package pinned to the version: a bare path would upgrade k8s.io/kubernetes to the
  # newest release, past the staging versions replaced above.
  for b in "${names[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b@v$version"); done
  run_with_progress "kubernetes-$version-modules" go get "${pkgs[@]}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=v$version"
  for b in "${names[@]}"; do
    have "$b-v$version" && continue
    run_with_progress "$b" go build -tags selinux,notest -ldflags "$ldflags" -o "$BIN_DIR/$b-v$version.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$BIN_DIR/$b-v$version.tmp" "$BIN_DIR/$b-v$version"
  done
}

build_kubernetes() {
  have kube-apiserver-v"$K8S_VERSION" kube-controller-manager-v"$K8S_VERSION" \
    kube-scheduler-v"$K8S_VERSION" kubectl-v"$K8S_VERSION" && return 0
  say "building Kubernetes v$K8S_VERSION (kube-apiserver kube-controller-manager kube-scheduler kubectl): the slowest step, 10-30 minutes on 2 cores"
  build_k8s_commands "$K8S_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

# The real node's kubelet and kube-proxy: an older minor than the control plane (allowed:
# a kubelet may be up to three minors behind), because 1.35 is the last whose runtime
# support includes Debian's containerd 1.6.
build_node() {
  have kubelet-v"$NODE_K8S_VERSION" kube-proxy-v"$NODE_K8S_VERSION" && return 0
  lock_for_build
  have kubelet-v"$NODE_K8S_VERSION" kube-proxy-v"$NODE_K8S_VERSION" && return 0
  say "building kubelet and kube-proxy v$NODE_K8S_VERSION for the real node (5-20 minutes on 2 cores)"
  # The kubelet calls the runtime through cgo-free code; CGO off like the control plane.
  build_k8s_commands "$NODE_K8S_VERSION" kubelet kube-proxy
}

# kube-router, run with only its network policy firewall (iptables + ipset): it fits this
# kernel, which lacks the nftables queue kube-network-policies needs.
build_kube_router() {
  have "kube-router-v$KUBE_ROUTER_VERSION" && return 0
  lock_for_build
  have "kube-router-v$KUBE_ROUTER_VERSION" && return 0
  say "building kube-router v$KUBE_ROUTER_VERSION (3-10 minutes)"
  local dir="$SRC_DIR/kube-router-$KUBE_ROUTER_VERSION"
  mkdir -p "$dir" && cd "$dir"
  printf 'module fleet.local/kube-router-build\n\ngo 1.26\n' >go.mod
  run_with_progress kube-router-modules go get "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v$KUBE_ROUTER_VERSION"
  run_with_progress kube-router go build -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v$KUBE_ROUTER_VERSION" \
    -o "$BIN_DIR/kube-router-v$KUBE_ROUTER_VERSION.tmp" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  mv "$BIN_DIR/kube-router-v$KUBE_ROUTER_VERSION.tmp" "$BIN_DIR/kube-router-v$KUBE_ROUTER_VERSION"
}

build_etcd() {
  have "etcd-v$ETCD_VERSION" && return 0
  lock_for_build
  have "etcd-v$ETCD_VERSION" && return 0
  say "building etcd v$ETCD_VERSION (a few minutes)"
  local dir="$SRC_DIR/etcd-$ETCD_VERSION"
  mkdir -p "$dir" && cd "$dir"
  cat >main.go <<'GO'
// The etcd server binary, built from the published module (its own go.mod uses
// relative replaces, so it cannot be installed directly).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module fleet.local/etcd-build\n\ngo 1.26\n' >go.mod
  run_with_progress etcd-modules go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  run_with_progress etcd-tidy go mod tidy
  run_with_progress etcd go build -ldflags "-s -w" -o "$BIN_DIR/etcd-v$ETCD_VERSION.tmp" .
  mv "$BIN_DIR/etcd-v$ETCD_VERSION.tmp" "$BIN_DIR/etcd-v$ETCD_VERSION"
}

build_kwok() {
  have "kwok-v$KWOK_VERSION" "kwokctl-v$KWOK_VERSION" && return 0
  lock_for_build
  have "kwok-v$KWOK_VERSION" "kwokctl-v$KWOK_VERSION" && return 0
  say "building kwok and kwokctl v$KWOK_VERSION (a few minutes)"
  local gobin="$SRC_DIR/kwok-$KWOK_VERSION/bin"
  mkdir -p "$gobin"
  run_with_progress kwok env GOBIN="$gobin" go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mv "$gobin/kwok" "$BIN_DIR/kwok-v$KWOK_VERSION"
  mv "$gobin/kwokctl" "$BIN_DIR/kwokctl-v$KWOK_VERSION"
}

build_traefik() {
  have "traefik-v$TRAEFIK_VERSION" && return 0
  lock_for_build
  have "traefik-v$TRAEFIK_VERSION" && return 0
  say "building Traefik v$TRAEFIK_VERSION (5-15 minutes)"
  local dir="$SRC_DIR/traefik-$TRAEFIK_VERSION"
  mkdir -p "$dir" && cd "$dir"
  local upstream_mod
  upstream_mod=$(go mod download -json "github.com/traefik/traefik/v3@v$TRAEFIK_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module fleet.local/traefik-build"
    echo "go 1.26"
    echo "require github.com/traefik/traefik/v3 v$TRAEFIK_VERSION"
    # Traefik pins some dependencies through replace/exclude; keep the non-local ones.
    awk '/^(replace|exclude) \($/ { blk=$1; next } blk && /^\)/ { blk=""; next }
         blk && $0 !~ /=> \.\.?\// { sub(/^[ \t]+/, ""); print blk " " $0; next }
         /^(replace|exclude) / && $0 !~ /=> \.\.?\// { print }' "$upstream_mod"
  } >go.mod
  run_with_progress traefik-modules go get "github.com/traefik/traefik/v3/cmd/traefik@v$TRAEFIK_VERSION"
  run_with_progress traefik go build -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$BIN_DIR/traefik-v$TRAEFIK_VERSION.tmp" github.com/traefik/traefik/v3/cmd/traefik
  mv "$BIN_DIR/traefik-v$TRAEFIK_VERSION.tmp" "$BIN_DIR/traefik-v$TRAEFIK_VERSION"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd kwok kubernetes)
for t in "${targets[@]}"; do
  case "$t" in
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    kubernetes) build_kubernetes ;;
    traefik) build_traefik ;;
    node) build_node ;;
    kube-router) build_kube_router ;;
    *) die "unknown target '$t' (etcd, kwok, kubernetes, traefik, node, kube-router)" ;;
  esac
done
echo "$BIN_DIR"
