#!/usr/bin/env bash
# Install every Debian package Meridian's build, tests and tools need.
# Idempotent: installs only what is missing; safe to run any number of times.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libuv1-dev libcmocka-dev libsqlite3-dev librocksdb-dev libssl-dev
      libpq-dev postgresql-client libedit-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
