# The real node's configuration files, written into .cluster/real-node by scripts/real-node.sh
# (which sources this after setting NODE_DIR, SOCK, PKI and the rest): containerd with its CRI
# plugin, the CNI bridge, the kubelet and kube-proxy. Why each setting: the comments beside it.

write_containerd_config() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat >"$NODE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REAL_NODE_PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: a pod's negative oom_score_adj is clamped instead of failing.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
  # Images are imported, never pulled: every registry host resolves to a closed local port.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$NODE_DIR/containerd/certs.d"
TOML
  local host
  for host in docker.io ghcr.io registry.k8s.io quay.io gcr.io localhost; do
    mkdir -p "$NODE_DIR/containerd/certs.d/$host"
    printf 'server = "http://127.0.0.1:9"\n' >"$NODE_DIR/containerd/certs.d/$host/hosts.toml"
  done
  # ipMasq off and no port mappings: pod traffic is never rewritten to leave the machine.
  cat >"$NODE_DIR/cni/net.d/10-fleet.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "fleet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$REAL_NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$REAL_NODE_POD_CIDR", "gateway": "$REAL_NODE_HOST_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
JSON
}

write_kubelet_config() {
  mkdir -p "$NODE_DIR/kubelet"
  kwokctl get kubeconfig --user "system:node:$REAL_NODE_NAME" --group system:nodes >"$NODE_DIR/kubelet.kubeconfig"
  kwokctl get kubeconfig --user system:kube-proxy --group system:node-proxier >"$NODE_DIR/kube-proxy.kubeconfig"
  # No cluster DNS and no nameserver: a pod's lookups fail at once inside its own network
  # namespace instead of going to this machine's resolver.
  printf 'options ndots:1 timeout:1 attempts:1\n' >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
# cgroup v1 without systemd; Kubernetes >= 1.35 refuses cgroup v1 unless told.
cgroupDriver: cgroupfs
failCgroupV1: false
# The API server reaches the kubelet (logs, exec) on the bridge, the only address it serves.
address: $REAL_NODE_HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
registerWithTaints:
  # Only the pods that ask for the real node (the real-node overlay's) are placed here.
  - key: gptme.ai/real-node
    value: "true"
    effect: NoSchedule
resolvConf: $NODE_DIR/resolv.conf
clusterDomain: cluster.local
# No CAP_SYS_RESOURCE: the kubelet cannot lower its own oom_score_adj.
oomScoreAdj: 0
failSwapOn: false
maxPods: 40
serializeImagePulls: false
# The disk is shared with everything else here: evict only when it is really full.
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  imagefs.available: 2%
# Imported images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: $NODE_DIR/kubelet/volume-plugins
staticPodPath: ""
YAML
}

write_kube_proxy_config() {
  cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $REAL_NODE_NAME
clientConnection:
  kubeconfig: $NODE_DIR/kube-proxy.kubeconfig
clusterCIDR: $REAL_NODE_POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$REAL_NODE_HOST_IP/32"]
oomScoreAdj: 0
# Leave the kernel's conntrack table sizes and timeouts as they are (a shared machine).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
}
