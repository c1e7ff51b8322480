#!/usr/bin/env bash
# The real node's storage provisioner (started by scripts/real-node.sh up, stopped by down):
# a directory on this machine for every claim of the StorageClass real-node-local, handed to
# the claim as a `local` PersistentVolume pinned to the node, and removed with it.
#
# Why not the cluster's default class (Kubernetes' hostPath provisioner)? Its directories are
# 0750 root:root, and the kubelet never changes the ownership of a hostPath volume: a pod
# under the restricted Pod Security Standard (uid 1000, no root, no chown init container)
# cannot write there, and gptme-server, whose HOME is the workspace, exits on its first
# write. A `local` volume is one the kubelet manages like a real disk: on a pod's first mount
# it gives the directory to the pod's fsGroup (group-writable, setgid), exactly as it does
# for a cloud volume. So the pod's own securityContext makes the workspace writable, nothing
# runs as root in the pod, and the directories here need no uid of ours.
#
# This is the external-provisioner protocol in its smallest form: the PV names its claim in
# claimRef (with the claim's uid, so a claim made again under the same name never gets the
# old data) and carries pv.kubernetes.io/provisioned-by, which makes the controller-manager
# leave a Released volume to us (reclaimPolicy Delete): we delete its directory, then it.
#
# Usage: scripts/real-node-provisioner.sh   (runs until killed; as root)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-env.sh
source "$ROOT/scripts/cluster-env.sh"
# shellcheck source=scripts/real-node-env.sh
source "$ROOT/scripts/real-node-env.sh"

ADMIN_KUBECONFIG="$(readlink -m "$ROOT/.cluster")/kubeconfig"
# Per work tree, like the rest of the node's state: `down` removes it with the cluster
# (whose PersistentVolumes are gone then too).
VOLUMES="$(readlink -m "$ROOT/.cluster")/real-node/volumes"
kubectl() { "$BIN_DIR/kubectl-v$K8S_VERSION" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
log() { printf '%s %s\n' "$(date -u +%FT%T.%3NZ)" "$*"; }

mkdir -p "$VOLUMES"

# One line per event (a watch prints objects one by one). Fields that may be empty get a "-"
# appended so that `read` never shifts the ones after them: namespace, name, uid, class-,
# volume- ("-" while unbound), size, deleting- ("-" unless being deleted).
CLAIM_LINE='{.metadata.namespace}{" "}{.metadata.name}{" "}{.metadata.uid}{" "}{.spec.storageClassName}{"- "}{.spec.volumeName}{"- "}{.spec.resources.requests.storage}{" "}{.metadata.deletionTimestamp}{"-\n"}'
# Name, provisioner-, phase, deleting-.
VOLUME_LINE='{.metadata.name}{" "}{.metadata.annotations.pv\.kubernetes\.io/provisioned-by}{"- "}{.status.phase}{" "}{.metadata.deletionTimestamp}{"-\n"}'

provision() {
  local namespace=$1 name=$2 uid=$3 size=$4 volume="pvc-$3"
  # Owned by root, closed to others: the kubelet opens it to the pod's fsGroup on mount.
  mkdir -p -m 0700 "$VOLUMES/$volume"
  local out
  if out=$(kubectl create -f - 2>&1 <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $volume
  annotations:
    pv.kubernetes.io/provisioned-by: $REAL_NODE_PROVISIONER
  labels:
    app.kubernetes.io/managed-by: real-node-provisioner
spec:
  storageClassName: $REAL_NODE_STORAGE_CLASS
  capacity:
    storage: $size
  accessModes: [ReadWriteOnce]
  volumeMode: Filesystem
  persistentVolumeReclaimPolicy: Delete
  claimRef:
    apiVersion: v1
    kind: PersistentVolumeClaim
    namespace: $namespace
    name: $name
    uid: $uid
  local:
    path: $VOLUMES/$volume
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - { key: kubernetes.io/hostname, operator: In, values: [$REAL_NODE_NAME] }
YAML
  ); then
    log "provisioned $volume for $namespace/$name ($size)"
  elif [[ $out == *AlreadyExists* ]]; then
    : # an earlier event of the same claim
  else
    log "could not provision $volume for $namespace/$name: $out"
  fi
}

reclaim() {
  local volume=$1
  # The name is ours (pvc-<uid>): nothing outside the volumes directory is ever removed.
  [[ $volume =~ ^pvc-[0-9a-f-]+$ ]] || return 0
  rm -rf "${VOLUMES:?}/$volume"
  kubectl delete pv "$volume" --ignore-not-found --wait=false >/dev/null
  log "deleted $volume and its directory"
}

watch_claims() {
  local namespace name uid class bound size deleting
  while read -r namespace name uid class bound size deleting; do
    [ "$class" = "$REAL_NODE_STORAGE_CLASS-" ] && [ "$bound" = - ] && [ "$deleting" = - ] || continue
    provision "$namespace" "$name" "$uid" "$size"
  done < <(kubectl get pvc -A --watch -o "jsonpath=$CLAIM_LINE")
}

watch_volumes() {
  local volume provisioner phase deleting
  while read -r volume provisioner phase deleting; do
    [ "$provisioner" = "$REAL_NODE_PROVISIONER-" ] && [ "$phase" = Released ] &&
      [ "$deleting" = - ] || continue
    reclaim "$volume"
  done < <(kubectl get pv --watch -o "jsonpath=$VOLUME_LINE")
}

# A watch ends when the API server closes it (or restarts): list and watch again; the list
# replays every object, and both actions tolerate seeing one twice.
forever() { while :; do "$@" || true; sleep 1; done; }
forever watch_claims &
forever watch_volumes &
# Started in a session of its own (scripts/real-node.sh start): stopping it stops the
# watches and their kubectl processes with it.
trap 'trap - TERM INT; kill 0' TERM INT
wait
