# Where the real node lives and which addresses it owns; sourced by the real-node scripts
# after cluster-env.sh. State (sockets, pod sandboxes, logs) is per work tree, under
# .cluster/real-node; what is slow to make (rootfs, images) is in the cache, shared.
#
# Addresses. Every packet a pod sends stays on this machine:
# - 10.244.0.0/24 is the pod network, on a bridge this project creates (fleet0, the host is
#   10.244.0.1 on it). Nothing else on these machines uses 10.244/16 (the host's only
#   network is 192.0.2.0/24 and its resolver 10.255.255.53).
# - 10.244.240.0/20 is the Service range: virtual, rewritten by kube-proxy; the host routes
#   it into the bridge too, so a packet to a Service IP that kube-proxy has not rewritten yet
#   is dropped there instead of leaving the machine.
# - Traffic that enters from the bridge is routed by a table of its own that knows only the
#   pod network and has "unreachable" as its default route: pods cannot reach the outside
#   world, whatever iptables rules (kube-proxy's, kube-router's) do.
REAL_NODE_NAME=${FLEET_REAL_NODE_NAME:-fleet-real-0}
REAL_NODE_BRIDGE=fleet0
REAL_NODE_POD_CIDR=10.244.0.0/24
REAL_NODE_HOST_IP=10.244.0.1
REAL_NODE_SERVICE_CIDR=10.244.240.0/20
# The first address of the Service range: the "kubernetes" Service (in-cluster config).
REAL_NODE_API_SERVICE_IP=10.244.240.1
REAL_NODE_ROUTE_TABLE=1244

# Workspaces on the real node: claims of this StorageClass get a `local` volume from the
# node's own provisioner (scripts/real-node-provisioner.sh says why not hostPath); the
# overlay k8s/overlays/real-node sets it as WORKSPACE_STORAGE_CLASS.
REAL_NODE_STORAGE_CLASS=real-node-local
REAL_NODE_PROVISIONER=real-node.gptme.ai/local

# The image names the manifests and Dockerfiles use, and the local tags the overlay swaps in.
REAL_NODE_PAUSE_IMAGE=localhost/gptme-fleet/pause:3.10
REAL_NODE_IMAGE_TAG=local

# buildah, podman and skopeo keep their storage and settings in the cache, not in /var/lib.
CONTAINERS_DIR="$CACHE_DIR/containers"
export CONTAINERS_STORAGE_CONF="$CONTAINERS_DIR/storage.conf"
export CONTAINERS_CONF="$CONTAINERS_DIR/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$CONTAINERS_DIR/registries.conf"
