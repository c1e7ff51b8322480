#!/usr/bin/env bash
# A real node next to the KWOK nodes: kubelet on containerd + runc with a CNI bridge,
# kube-proxy (iptables) for Services, and kube-router's firewall (and nothing else of it)
# enforcing NetworkPolicies. Called by scripts/cluster.sh for `up --real-node` and `down`;
# the control plane must have been created for it (scripts/cluster.sh does that).
#
# Usage: scripts/real-node.sh up|down|status|images   (images: import the saved images again)
# Runs as root. Config, state, sockets and logs live in .cluster/real-node (per work tree);
# nothing outside it is written but the bridge, its route table and rule, iptables/ipset
# rules, and cgroups, all removed again by `down`. See scripts/real-node-env.sh for the
# addresses and why no pod packet can leave the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-env.sh
source "$ROOT/scripts/cluster-env.sh"
# shellcheck source=scripts/real-node-env.sh
source "$ROOT/scripts/real-node-env.sh"

# A work tree may share another checkout's cluster through a .cluster symlink: every path the
# cluster records is the resolved one, so each checkout sees the same cluster as healthy.
STATE_DIR=$(readlink -m "$ROOT/.cluster")
NODE_DIR="$STATE_DIR/real-node"
LOGS="$NODE_DIR/logs"
PIDS="$NODE_DIR/pids"
SOCK="$NODE_DIR/containerd/containerd.sock"
ADMIN_KUBECONFIG="$STATE_DIR/kubeconfig"
PKI="$STATE_DIR/kwok/clusters/gptme-fleet/pki"
IMAGES_DIR="$CACHE_DIR/real-node/images"
# containerd's content and snapshots (the unpacked images, gigabytes of small files) stay
# in the cache between clusters: importing them takes half a minute, deleting them as long.
# Pods and containers of an earlier node there are garbage-collected by the next kubelet.
CONTAINERD_ROOT="$CACHE_DIR/real-node/containerd-root"

# The configuration files of containerd, CNI, the kubelet and kube-proxy.
# shellcheck source=scripts/real-node-config.sh
source "$ROOT/scripts/real-node-config.sh"

say() { printf '[real-node] %s\n' "$*" >&2; }
die() { printf '[real-node] error: %s\n' "$*" >&2; exit 1; }
kubectl() { "$BIN_DIR/kubectl-v$K8S_VERSION" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
kwokctl() { KWOK_WORKDIR="$STATE_DIR/kwok" "$BIN_DIR/kwokctl-v$KWOK_VERSION" --name gptme-fleet "$@"; }
ctr() { command ctr --address "$SOCK" --namespace k8s.io "$@"; }
api_port() { kubectl config view -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://'; }

# Starts a long-running process in its own session, its output in logs/<name>.log.
start() {
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name"
}
# Alive and not a zombie: the processes outlive the `up` that started them, so whoever
# adopted them reaps them, sometimes seconds after they exited.
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
running() { [ -s "$PIDS/$1" ] && alive "$(cat "$PIDS/$1")"; }
stop() {
  local name=$1 pid
  [ -s "$PIDS/$name" ] || return 0
  pid=$(cat "$PIDS/$name")
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name"
}
wait_for() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "$what did not come up (logs: $LOGS)"
}

network_up() {
  # The bridge exists before any pod, so the kubelet and the API relay can bind its address.
  ip link show "$REAL_NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$REAL_NODE_BRIDGE" type bridge
  ip addr replace "$REAL_NODE_HOST_IP/${REAL_NODE_POD_CIDR#*/}" dev "$REAL_NODE_BRIDGE"
  ip link set "$REAL_NODE_BRIDGE" up
  ip route replace "$REAL_NODE_SERVICE_CIDR" dev "$REAL_NODE_BRIDGE" src "$REAL_NODE_HOST_IP"
  # Whatever enters from the bridge is routed by a table that knows only our networks.
  ip route replace "$REAL_NODE_POD_CIDR" dev "$REAL_NODE_BRIDGE" table "$REAL_NODE_ROUTE_TABLE"
  ip route replace "$REAL_NODE_SERVICE_CIDR" dev "$REAL_NODE_BRIDGE" table "$REAL_NODE_ROUTE_TABLE"
  ip route replace unreachable default table "$REAL_NODE_ROUTE_TABLE"
  ip rule show | grep -q "iif $REAL_NODE_BRIDGE lookup $REAL_NODE_ROUTE_TABLE" ||
    ip rule add iif "$REAL_NODE_BRIDGE" lookup "$REAL_NODE_ROUTE_TABLE" priority 1244
  # Bridged pod-to-pod traffic must pass iptables, or NetworkPolicy and Services miss it.
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
}

network_down() {
  ip rule del iif "$REAL_NODE_BRIDGE" lookup "$REAL_NODE_ROUTE_TABLE" 2>/dev/null || true
  ip route flush table "$REAL_NODE_ROUTE_TABLE" 2>/dev/null || true
  ip route del "$REAL_NODE_SERVICE_CIDR" 2>/dev/null || true
  ip link del "$REAL_NODE_BRIDGE" 2>/dev/null || true
}

containerd_up() {
  write_containerd_config
  start containerd containerd --config "$NODE_DIR/containerd/config.toml"
  wait_for containerd 60 ctr version
  import_images
}

# One archive into containerd, tried up to three times: containerd 1.6 collects the snapshots
# a replaced image no longer references while the next import unpacks layers over them, and
# that import then fails with "parent snapshot ... does not exist" (seen importing the reaper
# right after the handler, whose images share their base layers); a second try unpacks anew.
import_archive() {
  local try
  for try in 1 2 3; do
    ctr images import "$1" >>"$LOGS/import.log" 2>&1 && return 0
    say "importing $(basename "$1") failed (try $try of 3); trying again"
    sleep 2
  done
  return 1
}

# Every image the images script saved since it was last imported; a new build under the
# same name replaces the old.
import_images() {
  local archive stamp started=$SECONDS count=0
  mkdir -p "$CONTAINERD_ROOT/imported"
  for archive in "$IMAGES_DIR"/*.tar; do
    stamp="$CONTAINERD_ROOT/imported/$(basename "$archive")"
    [ "$stamp" -nt "$archive" ] && ctr images ls -q | grep -q . && continue
    import_archive "$archive" || die "importing $archive failed (log: $LOGS/import.log)"
    touch "$stamp"
    count=$((count + 1))
  done
  say "imported $count new image archives into containerd in $((SECONDS - started))s"
}

# The StorageClass of the node's workspaces and its provisioner (a process on this machine,
# like the kubelet: it makes directories here).
storage_up() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $REAL_NODE_STORAGE_CLASS
provisioner: $REAL_NODE_PROVISIONER
reclaimPolicy: Delete
# The node is the only place a volume can be: binding at once saves the scheduler a round.
volumeBindingMode: Immediate
YAML
  start provisioner bash "$ROOT/scripts/real-node-provisioner.sh"
}

node_ready() {
  [ "$(kubectl get node "$REAL_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "the real node needs root"
  [ -s "$ADMIN_KUBECONFIG" ] || die "no control plane: run 'npm run cluster -- up --real-node'"
  [ -s "$STATE_DIR/real-node.enabled" ] || die "the control plane was not created for a real node: 'npm run cluster -- down' then 'up --real-node'"
  if running containerd && running kubelet && running kube-proxy && running kube-router &&
    running provisioner && node_ready; then
    say "reusing the running real node $REAL_NODE_NAME"
    return 0
  fi
  cmd_down_processes
  local started=$SECONDS
  mkdir -p "$LOGS" "$PIDS"
  [ -n "$(ls "$IMAGES_DIR"/*.tar 2>/dev/null)" ] || die "no images: run scripts/real-node-images.sh"
  network_up
  containerd_up

  # The API server listens on loopback; pods reach it at the advertised address on the
  # bridge (the "kubernetes" Service's endpoint), relayed to loopback unchanged (TLS passes).
  local port
  port=$(api_port)
  start api-relay socat "TCP-LISTEN:$port,bind=$REAL_NODE_HOST_IP,fork,reuseaddr" "TCP:127.0.0.1:$port"

  write_kubelet_config
  # A Node object left by an earlier kubelet would read Ready before this one has started.
  kubectl delete node "$REAL_NODE_NAME" --ignore-not-found --wait=true >/dev/null
  say "starting kubelet v$NODE_K8S_VERSION as node $REAL_NODE_NAME"
  start kubelet "$BIN_DIR/kubelet-v$NODE_K8S_VERSION" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
    --cert-dir "$NODE_DIR/kubelet/pki" --hostname-override "$REAL_NODE_NAME" \
    --node-ip "$REAL_NODE_HOST_IP" --node-labels gptme.ai/real-node=true
  wait_for "node $REAL_NODE_NAME" 120 kubectl get node "$REAL_NODE_NAME"
  # No IPAM controller runs: the node's pod range is set once, for kube-router.
  [ -n "$(kubectl get node "$REAL_NODE_NAME" -o jsonpath='{.spec.podCIDR}')" ] ||
    kubectl patch node "$REAL_NODE_NAME" --type merge \
      -p "{\"spec\":{\"podCIDR\":\"$REAL_NODE_POD_CIDR\",\"podCIDRs\":[\"$REAL_NODE_POD_CIDR\"]}}" >/dev/null

  write_kube_proxy_config
  start kube-proxy "$BIN_DIR/kube-proxy-v$NODE_K8S_VERSION" --config "$NODE_DIR/kube-proxy.yaml"
  # Only the firewall: no routing, no BGP, no service proxy (kube-proxy does Services).
  start kube-router "$BIN_DIR/kube-router-v$KUBE_ROUTER_VERSION" --kubeconfig "$ADMIN_KUBECONFIG" \
    --hostname-override "$REAL_NODE_NAME" --run-firewall=true --run-router=false \
    --run-service-proxy=false --service-cluster-ip-range "$REAL_NODE_SERVICE_CIDR" \
    --health-port 0 --metrics-port 0
  storage_up
  wait_for "node $REAL_NODE_NAME Ready" 120 node_ready
  wait_for kube-proxy 60 curl -sf http://127.0.0.1:10256/healthz
  running kube-router || die "kube-router exited (log: $LOGS/kube-router.log)"
  say "real node $REAL_NODE_NAME Ready in $((SECONDS - started))s (pods on $REAL_NODE_POD_CIDR, bridge $REAL_NODE_BRIDGE)"
}

# Stops the node's processes, its pods' containers and shims, in dependency order.
cmd_down_processes() {
  mkdir -p "$PIDS"
  stop provisioner
  stop kube-router
  stop kube-proxy
  stop kubelet
  stop api-relay
  if running containerd; then
    local task
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
    sleep 1
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  # Shims outlive containerd by design; ours name our socket on their command line.
  local pids
  pids=$(pgrep -f -- "-address $SOCK" || true)
  [ -z "$pids" ] || { kill -9 $pids 2>/dev/null || true; }
  # Processes of the pods (children of killed shims) are in the kubelet's cgroups.
  local procs cg
  for cg in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods; do
    [ -d "$cg" ] || continue
    procs=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -z "$procs" ] || { kill -9 $procs 2>/dev/null || true; }
  done
}

# The rules and sets of kube-proxy, kube-router and the kubelet: on this machine only the
# real node makes KUBE-* chains and sets. (kube-router's own --cleanup-config panics without
# a cluster, and kube-proxy --cleanup leaves the kubelet's and kube-router's.)
cleanup_rules() {
  local table rule chains chain
  for table in filter nat mangle raw; do
    { iptables-save -t "$table" 2>/dev/null || true; } |
      { grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*-j KUBE-' || true; } |
      while read -r rule; do eval "iptables -t $table ${rule/#-A/-D}" 2>/dev/null || true; done
    chains=$(iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p')
    for chain in $chains; do iptables -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do iptables -t "$table" -X "$chain" 2>/dev/null || true; done
  done
  { ipset list -n 2>/dev/null || true; } | { grep -E '^(inet6:)?KUBE-' || true; } |
    while read -r set; do ipset destroy "$set" 2>/dev/null || true; done
}

cmd_down() {
  [ -d "$NODE_DIR" ] || { network_down; return 0; }
  say "stopping the real node"
  cmd_down_processes
  cleanup_rules
  # Mounts under our state dir (pod volumes, rootfs overlays, network namespaces), deepest first.
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$NODE_DIR/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  network_down
  # The kubelet's empty cgroups (no process is left in them).
  for m in /sys/fs/cgroup/*/kubepods; do
    [ -d "$m" ] && find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  local started=$SECONDS
  rm -rf "$NODE_DIR"
  say "real node stopped (state removed in $((SECONDS - started))s)"
}

cmd_status() {
  local name ok=0
  for name in containerd api-relay kubelet kube-proxy kube-router provisioner; do
    if running "$name"; then say "$name: running (pid $(cat "$PIDS/$name"))"; else say "$name: not running"; ok=1; fi
  done
  node_ready && say "node $REAL_NODE_NAME: Ready" || { say "node $REAL_NODE_NAME: not Ready"; ok=1; }
  return $ok
}

case "${1:-}" in
  up) cmd_up ;;
  images) running containerd || die "the real node is not running"; import_images ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: scripts/real-node.sh up|down|status|images" ;;
esac
