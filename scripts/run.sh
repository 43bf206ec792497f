#!/usr/bin/env bash
# The README's first command: install what is missing, build (release), and
# run `meridian demo`: a local 3-node cluster on loopback (free ports, SQL on
# each node's RPC port) with the SQL shell connected to node 1. The nodes stop
# when the shell exits.
#
# Arguments go to `meridian demo` (e.g. --keep-running, --nodes 5).
# Idempotent: the demo directory ($MERIDIAN_DEMO_DIR, default
# ~/.meridian/demo) is reused: a cluster of an earlier run that still runs is
# reused as it is; a stopped one is removed and a new cluster starts.
# Environment: MERIDIAN_DEMO_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
echo "run: building (release) ..." >&2
bash scripts/build.sh release

args=()
[ -n "${MERIDIAN_DEMO_DIR:-}" ] && args+=(--dir "$MERIDIAN_DEMO_DIR")
exec "$root/build/meridian" demo "${args[@]}" "$@"
