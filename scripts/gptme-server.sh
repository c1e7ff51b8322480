#!/usr/bin/env bash
# Installs the real gptme-server (from PyPI, version pinned) that integration tests and
# benchmarks put behind KWOK pods' loopback IPs. Cached outside the repository, keyed by
# version, like the control plane: only the first run pays (about a minute).
#
# Usage: scripts/gptme-server.sh     install if missing, print the gptme-server path
set -euo pipefail

# shellcheck source=scripts/cluster-env.sh
source "$(dirname "$0")/cluster-env.sh"

say() { printf '[gptme-server] %s\n' "$*" >&2; }
die() { printf '[gptme-server] error: %s\n' "$*" >&2; exit 1; }

VENV="$CACHE_DIR/gptme-$GPTME_VERSION"
# Written last: a venv without it is a broken install, started again from scratch.
STAMP="$VENV/.installed"
# One install at a time per cache: a second run would remove the venv the first is filling.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.gptme-install.lock"
flock 9
if [ ! -f "$STAMP" ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 is needed (Debian: apt-get install python3 python3-venv)"
  say "installing gptme[server]==$GPTME_VERSION from PyPI into $VENV (about a minute, once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "gptme[server]==$GPTME_VERSION" ||
    { rm -rf "$VENV"; die "pip install gptme[server]==$GPTME_VERSION failed"; }
  touch "$STAMP"
  say "installed"
fi
echo "$VENV/bin/gptme-server"
