#!/usr/bin/env bash
# The local Kubernetes control plane: a KWOK cluster (binary runtime) with a real
# kube-apiserver, etcd, kube-controller-manager and kube-scheduler, and KWOK nodes that
# make scheduled pods Running and Ready with an IP. Everything binds to 127.0.0.1.
#
# Usage: npm run cluster -- up [--real-node]|down|status
#   up      build the binaries if needed (cached), start the cluster or reuse a healthy one
#           --real-node (or FLEET_REAL_NODE=1): also a real node that runs the fleet's images
#           as real containers (root; scripts/real-node.sh)
#   down    stop every process of the cluster (and of the real node) and remove its state
#   status  exit 0 when the cluster answers, 1 otherwise
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# A work tree may share another checkout's cluster through a .cluster symlink: every path the
# cluster records is the resolved one, so each checkout sees the same cluster as healthy.
STATE_DIR=$(readlink -m "$ROOT/.cluster")
KUBECONFIG_OUT="$STATE_DIR/kubeconfig"
CLUSTER_NAME=gptme-fleet
NODES=${FLEET_CLUSTER_NODES:-2}
export KWOK_WORKDIR="$STATE_DIR/kwok"
REAL_NODE=${FLEET_REAL_NODE:-0}
# Written when the control plane was made for a real node (its API server then advertises
# itself on the pod network, see real_node_config).
REAL_NODE_MARK="$STATE_DIR/real-node.enabled"

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/cluster-env.sh
source "$ROOT/scripts/cluster-env.sh"
BIN=$BIN_DIR

kwokctl() { "$BIN/kwokctl-v$KWOK_VERSION" --name "$CLUSTER_NAME" "$@"; }
kubectl() { "$BIN/kubectl-v$K8S_VERSION" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

# KWOK hands each pod an IP from its node's pod CIDR. On loopback ranges (all of 127/8 is
# this machine's own on Linux), a test can put a real gptme-server at a pod's IP and the
# handler reaches it exactly as it reaches a pod in production; KWOK's default 10.x IPs
# belong to nothing, and nothing may ever connect to them.
# Two clusters on one machine (two checkouts, say) must not share a range: one's real
# gptme-servers would answer for the other's pods. FLEET_POD_CIDR and FLEET_NODE_IP give a
# checkout its own (e.g. 127.52.0.0/24 and 127.51.0.1).
POD_CIDR=${FLEET_POD_CIDR:-127.42.0.0/24}   # node i gets 127.42.i.0/24
NODE_IP=${FLEET_NODE_IP:-127.41.0.1}        # node i gets 127.41.0.(1+i)

healthy() {
  [ -s "$KUBECONFIG_OUT" ] && [ -x "$BIN/kubectl-v$K8S_VERSION" ] || return 1
  kubectl get --raw /readyz --request-timeout=3s >/dev/null 2>&1 || return 1
  # A cluster made without the real node's settings cannot take one.
  [ "$REAL_NODE" != 1 ] || [ -s "$REAL_NODE_MARK" ] || return 1
  # A healthy cluster also runs its KWOK controller: Ready nodes prove it (and that there are some).
  kubectl wait --for=condition=Ready node -l type=kwok --timeout=5s >/dev/null 2>&1 || return 1
  # ...and only nodes with loopback pod CIDRs (a cluster from before they were set is replaced).
  kubectl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.spec.podCIDR}{"\n"}{end}' | grep -qv '^127\.' && return 1
  # ...and made with today's configuration (a changed flag or version replaces it); a cluster
  # made for a real node serves without one too.
  local made_for_real_node=0
  [ ! -s "$REAL_NODE_MARK" ] || made_for_real_node=1
  [ "$(REAL_NODE=$made_for_real_node cluster_config)" = "$(cat "$STATE_DIR/kwokctl.yaml" 2>/dev/null)" ] || return 1
  # ...and the default StorageClass that workspaces bind through.
  kubectl get storageclass "$STORAGE_CLASS" >/dev/null 2>&1
}

# The cluster's default StorageClass: claims get a directory from the hostPath provisioner
# (enabled in cluster_config), deleted with the claim. Immediate binding: this machine is the
# only place a volume can be, and a claim bound before its Pod is scheduled adds ~70 ms to
# a Pod's start where WaitForFirstConsumer added ~900 ms.
STORAGE_CLASS=local-hostpath
install_storage_class() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
YAML
}

# What a real node needs of the control plane: the API server advertised on the pod bridge
# (the "kubernetes" Service's endpoint, relayed to loopback), its Service range on that
# network, both in its certificate, and a client certificate for the kubelet API (logs, exec).
real_node_options() {
  # shellcheck source=scripts/real-node-env.sh
  source "$ROOT/scripts/real-node-env.sh"
  printf '  kubeApiserverCertSANs: [%s, %s]\n' "$REAL_NODE_API_SERVICE_IP" "$REAL_NODE_HOST_IP"
}
real_node_patches() {
  # shellcheck source=scripts/real-node-env.sh
  source "$ROOT/scripts/real-node-env.sh"
  local pki="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki"
  cat <<YAML
  - name: kube-apiserver
    extraArgs:
      - key: advertise-address
        value: $REAL_NODE_HOST_IP
      - key: service-cluster-ip-range
        value: $REAL_NODE_SERVICE_CIDR
      - key: kubelet-client-certificate
        value: $pki/admin.crt
      - key: kubelet-client-key
        value: $pki/admin.key
      # The node's address, not its name: a name would be looked up in this machine's DNS.
      - key: kubelet-preferred-address-types
        value: InternalIP
YAML
}

# Any free port, but with a real node a fixed one outside the NodePort range (30000-32767):
# kube-router lets pods reach node-local NodePort-range ports whatever their egress policy,
# and pods reach the API server on the node's address at this port.
api_port_default() { if [ "$REAL_NODE" = 1 ]; then echo 6443; else echo 0; fi; }

# The cluster's configuration, written to stdout (its components' versions and flags).
cluster_config() {
  cat <<YAML
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  kubeApiserverPort: ${FLEET_APISERVER_PORT:-$(api_port_default)}
  etcdBinary: $BIN/etcd-v$ETCD_VERSION
  kubeApiserverBinary: $BIN/kube-apiserver-v$K8S_VERSION
  kubeControllerManagerBinary: $BIN/kube-controller-manager-v$K8S_VERSION
  kubeSchedulerBinary: $BIN/kube-scheduler-v$K8S_VERSION
  kubectlBinary: $BIN/kubectl-v$K8S_VERSION
  kwokControllerBinary: $BIN/kwok-v$KWOK_VERSION
$([ "$REAL_NODE" != 1 ] || real_node_options)
componentsPatches:
$([ "$REAL_NODE" != 1 ] || real_node_patches)
  # KWOK runs only the nodes it made ('kwokctl scale node' marks them kwok.x-k8s.io/node=fake),
  # not every node: the real node has its kubelet, and the scale benchmark's Node objects carry
  # 100,000 Pods whose status it writes itself (scripts/bench/scale-fleet.ts).
  - name: kwok-controller
    extraArgs:
      - key: manage-all-nodes
        value: "false"
      - key: manage-nodes-with-annotation-selector
        value: kwok.x-k8s.io/node=fake
  # The quota controller counts a resource new to it (our CRD) only at its next full resync,
  # 5 minutes by default; until then the API server refuses ClientPods under the fleet's
  # ResourceQuota. A short period lets a fresh cluster take instances within a minute.
  # Go grows a heap to twice what it holds before collecting (GOGC=100). A soft limit makes
  # each collect sooner instead as it nears its share of the machine: at 100,000 instances
  # (the scale benchmark) the API server reached 15.6 GB this way, the controller-manager
  # 4.4 GB and the scheduler 1.6 GB, and the kernel killed the API server on 24 GiB. Each
  # limit is above what its process holds at 100,000 (a limit below it makes the collector
  # run without end: the controller-manager at 3 GiB held 3.7-3.9 GB and burned 1.7 cores).
  # Far below these at the tests' sizes, where they change nothing.
  - name: kube-apiserver
    extraEnvs:
      - name: GOMEMLIMIT
        value: 11GiB
  - name: kube-scheduler
    extraEnvs:
      - name: GOMEMLIMIT
        value: 2GiB
  - name: kube-controller-manager
    extraEnvs:
      - name: GOMEMLIMIT
        value: 5GiB
    extraArgs:
      - key: resource-quota-sync-period
        value: 15s
      # Kubernetes' own hostPath provisioner (single-machine clusters only, which this is):
      # the controller-manager makes a directory under /tmp/hostpath_pv for each claim of
      # the default StorageClass below and removes it when the claim is deleted, so instance
      # workspaces bind here as they would on a cluster with a real provisioner.
      - key: enable-hostpath-provisioner
        value: "true"
      # The controllers share one client, limited to 20 requests/s by default: a burst of new
      # workspaces (each claim costs the volume controller 4 to 5 writes) queued behind it
      # for seconds, and their Pods waited in the scheduler's backoff meanwhile.
      - key: kube-api-qps
        value: "200"
      - key: kube-api-burst
        value: "400"
YAML
}

# Processes started from this cluster's work directory, found by their command line, so
# that 'down' can prove nothing is left even if kwokctl lost track of one.
leftover_pids() { pgrep -f -- "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" || true; }

# The directories the hostPath provisioner made for this cluster's claims: it removes each
# with its claim, but a cluster stopped with claims left would leave them in /tmp (shared by
# every cluster on the machine), so they go with the cluster. Only paths of the form it makes.
remove_hostpath_volumes() {
  [ -s "$KUBECONFIG_OUT" ] && kubectl get --raw /readyz --request-timeout=3s >/dev/null 2>&1 || return 0
  local dir
  for dir in $(kubectl get pv -o jsonpath='{range .items[*]}{.spec.hostPath.path}{"\n"}{end}' 2>/dev/null); do
    if [[ $dir =~ ^/tmp/hostpath_pv/[0-9a-f-]{36}$ ]]; then rm -rf -- "$dir"; fi
  done
}

cmd_down() {
  # The real node first: its processes, containers, mounts, bridge and rules.
  if [ -d "$STATE_DIR/real-node" ] || [ -s "$REAL_NODE_MARK" ]; then bash "$ROOT/scripts/real-node.sh" down; fi
  rm -f "$REAL_NODE_MARK"
  remove_hostpath_volumes
  if [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ] && [ -x "$BIN/kwokctl-v$KWOK_VERSION" ]; then
    say "stopping cluster $CLUSTER_NAME"
    kwokctl delete cluster >/dev/null 2>&1 || true
  fi
  local pids
  pids=$(leftover_pids)
  if [ -n "$pids" ]; then
    say "stopping leftover processes: $(echo "$pids" | tr '\n' ' ')"
    kill $pids 2>/dev/null || true
    sleep 1
    pids=$(leftover_pids)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
  rm -rf "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" "$KUBECONFIG_OUT"
  say "down"
}

cmd_up() {
  mkdir -p "$STATE_DIR"
  if healthy; then
    say "reusing the running cluster ($(kubectl config view -o jsonpath='{.clusters[0].cluster.server}'))"
    return 0
  fi
  [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ] && { say "replacing a cluster that does not answer (or was made with another configuration)"; cmd_down; }
  local started=$SECONDS
  cluster_config >"$STATE_DIR/kwokctl.yaml"
  say "starting cluster $CLUSTER_NAME"
  # kwokctl picks its components' ports as the highest free ones below 32767 and binds them
  # only later: two clusters created at once (two checkouts) picked the same ports and one
  # failed with "address already in use". One creation at a time per machine.
  # The lock's descriptor is closed for kwokctl: the components it starts run on as daemons,
  # and one that inherited it would hold the lock for as long as its cluster runs (the first
  # version did, under the name .create.lock, and every other checkout's `up` waited forever).
  mkdir -p "$CACHE_DIR"
  (
    flock 9
    kwokctl --config "$STATE_DIR/kwokctl.yaml" create cluster --wait 2m >"$STATE_DIR/create.log" 2>&1 9>&-
  ) 9>"$CACHE_DIR/.cluster-create.lock" ||
    { tail -n 30 "$STATE_DIR/create.log" >&2; die "kwokctl could not start the cluster (log: $STATE_DIR/create.log)"; }
  cp "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/kubeconfig.yaml" "$KUBECONFIG_OUT"
  kwokctl scale node --replicas "$NODES" \
    --param ".podCIDRs=[\"$POD_CIDR\"]" --param ".nodeIPs=[\"$NODE_IP\"]" >>"$STATE_DIR/create.log" 2>&1 ||
    die "could not add KWOK nodes (log: $STATE_DIR/create.log)"
  kubectl wait --for=condition=Ready node --all --timeout=60s >/dev/null ||
    die "KWOK nodes did not become Ready"
  install_storage_class || die "could not create the StorageClass $STORAGE_CLASS"
  [ "$REAL_NODE" != 1 ] || echo "$(date -u +%FT%TZ)" >"$REAL_NODE_MARK"
  say "up in $((SECONDS - started))s: $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}'), kubeconfig $KUBECONFIG_OUT"
}

cmd_status() {
  if healthy; then
    say "running: $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')"
  else
    say "not running"
    return 1
  fi
}

# The real node: packages, binaries and images (each step skips what is there), then the node.
real_node_up() {
  bash "$ROOT/scripts/real-node-setup.sh"
  "$ROOT/scripts/cluster-build.sh" node kube-router >/dev/null
  [ -n "$(ls "$CACHE_DIR/real-node/images/"*.tar 2>/dev/null)" ] || bash "$ROOT/scripts/real-node-images.sh" >/dev/null
  bash "$ROOT/scripts/real-node.sh" up
}

[ "${2:-}" != --real-node ] || REAL_NODE=1
case "${1:-}" in
  up)
    "$ROOT/scripts/cluster-build.sh" etcd kwok kubernetes >/dev/null
    cmd_up
    [ "$REAL_NODE" != 1 ] || real_node_up
    ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: npm run cluster -- up [--real-node]|down|status" ;;
esac
