#!/usr/bin/env bash
# scripts/install-deps.sh — installs pulse's build dependencies from Debian's packages (run as root, or with sudo);
# Open MPI (libopenmpi-dev, openmpi-bin) is for scale-out (docs/scale-out.md): pulse builds without it too.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
pkgs="build-essential cmake pkg-config libopenblas-dev libopenblas0-pthread libcjson-dev zlib1g-dev libsqlite3-dev
      libopenmpi-dev openmpi-bin"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
echo "pulse build dependencies present"
