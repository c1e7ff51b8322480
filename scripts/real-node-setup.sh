#!/usr/bin/env bash
# Installs, once, what the real node needs from Debian's packages (as root: apt-get), and
# checks the kernel features it relies on. Safe to run again: installs only what is missing.
# Prints nothing but progress; exits 1 with the reason when this machine cannot run it.
#
# Why these: runc (crun fails on cgroup v1 hybrid mounts), containerd 1.6 with its CRI
# plugin, the CNI reference plugins (bridge, host-local, portmap, loopback), buildah, podman
# and skopeo to build images without a Docker engine, debootstrap for the base rootfs,
# catatonit for the pause image, iptables/ipset/conntrack for kube-proxy and kube-router,
# socat to relay the API server onto the pod network, binutils to strip the Node binary.
set -euo pipefail

say() { printf '[real-node-setup] %s\n' "$*" >&2; }
die() { printf '[real-node-setup] error: %s\n' "$*" >&2; exit 1; }

PACKAGES=(runc containerd containernetworking-plugins buildah podman skopeo debootstrap
  catatonit iptables ipset conntrack socat iproute2 python3-pip binutils)

[ "$(id -u)" = 0 ] || die "the real node needs root (containers, bridges, iptables): run as root"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the real node is set up from Debian's packages (Debian 12 bookworm)"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing from Debian: ${missing[*]} (a minute or two)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Kernel features the node uses; a missing one is named rather than failing later.
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no memory cgroup"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null ||
  die "bridge netfilter (br_netfilter) is missing: NetworkPolicy and Services need it"
ip link add fleet-probe0 type bridge 2>/dev/null && ip link del fleet-probe0 || die "cannot create a bridge"
unshare --net true 2>/dev/null || die "cannot create network namespaces"
say "ready: runc $(runc --version | sed -n 's/^runc version //p'), containerd $(containerd --version | awk '{print $3}')"
