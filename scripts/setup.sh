#!/usr/bin/env bash
# Install every Debian package Meridian's build, tests and tools need.
# Idempotent: installs only what is missing; safe to run any number of times.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libuv1-dev libcmocka-dev libsqlite3-dev librocksdb-dev libssl-dev
      libpq-dev postgresql-client libedit-dev
      nodejs)
# The PostgreSQL 15 server (about 50 MB): slt_postgres checks the SQL corpus
# (tests/sql/slt) against a throwaway server of its own and skips without it.
PKGS+=(postgresql)
# npm for the Node.js example; NodeSource's nodejs bundles it (and conflicts
# with Debian's npm package), so only when the command is missing.
command -v npm >/dev/null || PKGS+=(npm)
# --fuzz (scripts/test.sh): also clang, for the libFuzzer run (scripts/fuzz.sh;
# apt's default recommends bring its fuzzer runtime, libclang-rt-*-dev).
if [ "${1:-}" = "--fuzz" ]; then PKGS+=(clang); fi
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
# The Node.js example's dependencies (examples/node, pinned by its
# package-lock.json): installed once, again only when the lock file changed;
# without the npm registry the step is skipped and tests/e2e/test_examples
# skips its Node.js run, saying why.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/examples/node"
if command -v npm >/dev/null && [ -f "$node_dir/package-lock.json" ] &&
   { [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
     [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; }; then
  (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    echo "setup: npm ci in examples/node failed (npm registry unreachable?); the Node.js example test will skip" >&2
fi
