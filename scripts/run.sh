#!/usr/bin/env bash
# The README's first command: install what is missing, build (release), start
# a local single node in the background with its data in $MERIDIAN_DATA
# (default ./meridian-data), open `meridian sql` on it, and stop the node
# when the shell exits.
#
# Idempotent: a node of this store that is already running (from an earlier
# run whose shell was killed) is reused and left running; a port taken by
# something else is reported, never silently used.
# Environment: MERIDIAN_DATA (store dir), MERIDIAN_SQL_PORT (default 26257).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
echo "run: building (release) ..." >&2
bash scripts/build.sh release

bin="$root/build/meridian"
data="${MERIDIAN_DATA:-$root/meridian-data}"
port="${MERIDIAN_SQL_PORT:-26257}"
url="postgresql://root@127.0.0.1:$port/defaultdb?sslmode=disable"
stop_timeout_s=30

node_pid=""
if [ -f "$data/meridian.pid" ]; then
  pid=$(cat "$data/meridian.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    node_pid="$pid"
  fi
fi

started=""
if [ -n "$node_pid" ]; then
  running_url=$(cat "$data/sql-url" 2>/dev/null || true)
  echo "run: reusing the node already running on $data (pid $node_pid, ${running_url:-url unknown});" >&2
  echo "run: it was started by an earlier run and stays up; stop it with: kill $node_pid" >&2
  [ -n "$running_url" ] && url="$running_url"
elif pg_isready -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1; then
  echo "run: something else already serves 127.0.0.1:$port (not the node of $data)." >&2
  echo "run: stop it, or pick another port: MERIDIAN_SQL_PORT=26258 bash scripts/run.sh" >&2
  exit 1
else
  "$bin" start --store "$data" --sql-addr "127.0.0.1:$port" --insecure --background
  node_pid=$(cat "$data/meridian.pid")
  started=1
fi

stop_node() {
  [ -n "$started" ] || return 0
  echo "run: stopping the node (pid $node_pid) ..." >&2
  kill -TERM "$node_pid" 2>/dev/null || return 0
  # Wait for it to exit, at most stop_timeout_s; then SIGKILL.
  if ! timeout "$stop_timeout_s" tail --pid="$node_pid" -f /dev/null; then
    echo "run: the node did not stop within ${stop_timeout_s}s: SIGKILL" >&2
    kill -KILL "$node_pid" 2>/dev/null || true
  fi
}
trap stop_node EXIT

"$bin" sql --url "$url"
