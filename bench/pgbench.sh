#!/usr/bin/env bash
# bench/pgbench.sh: pgbench's TPC-B-like workload on a local 3-node cluster
# and on a single node (issue 8's headline run and its bench item).
#
#   bash bench/pgbench.sh [-s SCALE] [-T SECONDS] [--cluster-only | --single-only]
#
# For each target (a 3-node `meridian demo` cluster, then one
# `meridian start` node): `pgbench -i -s SCALE` (timed), then
# `pgbench -c 8 -j 2 -T SECONDS -n` in -M simple, prepared and extended,
# then select-only (-S); for each run it prints tps, the average latency and
# pgbench's failed-transaction count, and after each TPC-B run it checks
# sum(abalance) of pgbench_accounts = sum(delta) of pgbench_history (at the
# end through every node of the cluster).
#
# Builds nothing: uses $MERIDIAN_BIN, else build/meridian. Environment:
# PGBENCH_SCALE (10), PGBENCH_TIME (60), PGBENCH_CLIENTS (8), PGBENCH_JOBS
# (2), PGBENCH_INIT_TIMEOUT (3600 s: a hang, not a slow load, is an error),
# PGBENCH_KEEP=1 (keep the stores and node logs after stopping the nodes).
#
# Invariants:
#   - every node started here has its store under one mktemp directory; the
#     EXIT trap stops each (SIGTERM, bounded wait, SIGKILL) by the pid in its
#     store's meridian.pid, only if that pid runs the meridian binary, and
#     removes the directory (unless PGBENCH_KEEP=1);
#   - -n on every run: pgbench's pre-run step truncates pgbench_history,
#     which would break sum(abalance) = sum(delta) after the first run;
#   - timing never fails the script. Exit 1 only when a run reports failed
#     transactions, a client aborted (pgbench exit status non-zero), pgbench
#     -i or a node start fails, or the sums differ; 2 on a usage error.
# shellcheck disable=SC2317  # cleanup and store_pid run from the EXIT trap
set -u

SCALE=${PGBENCH_SCALE:-10}
DURATION=${PGBENCH_TIME:-60}
CLIENTS=${PGBENCH_CLIENTS:-8}
JOBS=${PGBENCH_JOBS:-2}
INIT_TIMEOUT=${PGBENCH_INIT_TIMEOUT:-3600}
RUN_CLUSTER=1
RUN_SINGLE=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MERIDIAN_BIN:-$ROOT/build/meridian}
STOP_WAIT_S=30   # SIGTERM, then SIGKILL

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        -s) SCALE=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
        -T) DURATION=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
        --cluster-only) RUN_SINGLE=0; shift ;;
        --single-only) RUN_CLUSTER=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "pgbench.sh: unexpected argument \"$1\"" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$SCALE" "$DURATION" "$CLIENTS" "$JOBS" "$INIT_TIMEOUT"; do
    case "$v" in ''|*[!0-9]*|0) echo "pgbench.sh: \"$v\" is not a positive integer" >&2; exit 2 ;; esac
done
for tool in pgbench psql timeout; do
    command -v "$tool" >/dev/null || { echo "pgbench.sh: $tool not found (Debian: postgresql-client, coreutils)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "pgbench.sh: no meridian binary at $BIN (build it, or set MERIDIAN_BIN)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meridian-pgbench.XXXXXX") || exit 1
FAILED=0

# The pid in STORE/meridian.pid, if that process runs $BIN.
store_pid() {
    local pid
    pid=$(cat "$1/meridian.pid" 2>/dev/null) || return 1
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$BIN")" ] || return 1
    echo "$pid"
}

cleanup() {
    local pids="" store pid i
    for store in "$WORK"/cluster/node* "$WORK"/single; do
        [ -d "$store" ] || continue
        pid=$(store_pid "$store") && { kill -TERM "$pid" 2>/dev/null; pids="$pids $pid"; }
    done
    for pid in $pids; do
        for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && { echo "pgbench.sh: pid $pid did not stop: SIGKILL" >&2; kill -KILL "$pid"; }
    done
    if [ "${PGBENCH_KEEP:-0}" = 1 ]; then
        echo "pgbench.sh: stores, node logs and pgbench output kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*"
    FAILED=1
}

# psql -At against 127.0.0.1:PORT; one value on stdout.
sql() {
    local port=$1; shift
    timeout 600 psql -X -q -At -h 127.0.0.1 -p "$port" -U root -d defaultdb -c "$*" 2>&1
}

# pgbench against PORT with the given arguments; prints a summary line,
# counts failures. LABEL names the run.
run_pgbench() {
    local label=$1 port=$2; shift 2
    local out="$WORK/pgbench-${label// /-}.out" st tps lat failed serial deadlock
    timeout $((DURATION + 300)) pgbench -h 127.0.0.1 -p "$port" -U root --failures-detailed "$@" \
        defaultdb >"$out" 2>&1
    st=$?
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -1)
    serial=$(sed -n 's/^number of serialization failures: \([0-9]*\).*/\1/p' "$out" | head -1)
    deadlock=$(sed -n 's/^number of deadlock failures: \([0-9]*\).*/\1/p' "$out" | head -1)
    printf '  %-26s tps %10s   latency avg %9s ms   failed %s' "$label" "${tps:-?}" "${lat:-?}" "${failed:-?}"
    [ "${failed:-0}" != 0 ] && printf ' (40001: %s, 40P01: %s)' "${serial:-?}" "${deadlock:-?}"
    printf '\n'
    if [ "$st" -ne 0 ]; then
        fail "$label: pgbench exited $st; its output:"
        tail -20 "$out" | sed 's/^/    /'
    elif [ -z "$failed" ] || [ "$failed" != 0 ]; then
        fail "$label: pgbench reported ${failed:-no count of} failed transactions"
    fi
}

# sum(abalance) = sum(delta) through PORT.
check_sums() {
    local label=$1 port=$2 acc hist t0
    t0=$(date +%s)
    acc=$(sql "$port" "select sum(abalance) from pgbench_accounts")
    hist=$(sql "$port" "select coalesce(sum(delta), 0) from pgbench_history")
    if [ "$acc" = "$hist" ] && [ -n "$acc" ]; then
        echo "  $label: sum(abalance) = sum(delta) = $acc ($(($(date +%s) - t0)) s)"
    else
        fail "$label: sum(abalance) = '$acc', sum(delta) = '$hist'"
    fi
}

# pgbench -i and the runs against PORT; extra ports get the final sum check.
bench_target() {
    local name=$1 port=$2; shift 2
    local t0 t1 st mode
    echo "== $name: pgbench -i -s $SCALE"
    t0=$(date +%s.%N)
    timeout "$INIT_TIMEOUT" pgbench -i -s "$SCALE" -h 127.0.0.1 -p "$port" -U root defaultdb \
        >"$WORK/init-$name.out" 2>&1
    st=$?
    t1=$(date +%s.%N)
    sed 's/^/    /' "$WORK/init-$name.out" | grep -v '^ *[0-9]* of [0-9]* tuples' | tail -8
    awk -v a="$t0" -v b="$t1" -v st="$st" 'BEGIN { printf "  init: %.1f s, exit %d\n", b - a, st }'
    if [ "$st" -ne 0 ]; then
        fail "$name: pgbench -i exited $st"
        return
    fi
    echo "== $name: pgbench -c $CLIENTS -j $JOBS -T $DURATION -n"
    for mode in simple prepared extended; do
        run_pgbench "$name TPC-B $mode" "$port" -c "$CLIENTS" -j "$JOBS" -T "$DURATION" -n -M "$mode"
        check_sums "after $mode" "$port"
    done
    run_pgbench "$name select-only" "$port" -S -c "$CLIENTS" -j "$JOBS" -T "$DURATION" -n
    for port in "$@"; do check_sums "through 127.0.0.1:$port" "$port"; done
}

echo "meridian: $BIN ($("$BIN" version 2>/dev/null | head -1))"
echo "scale $SCALE, $CLIENTS clients, $JOBS threads, $DURATION s per run; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$RUN_CLUSTER" = 1 ]; then
    echo "== cluster: meridian demo --nodes 3"
    if ! "$BIN" demo --nodes 3 --dir "$WORK/cluster" --keep-running </dev/null >"$WORK/demo.out" 2>&1; then
        sed 's/^/    /' "$WORK/demo.out"
        fail "cluster: meridian demo failed"
    else
        ports=()
        for i in 1 2 3; do
            url=$(cat "$WORK/cluster/node$i/sql-url" 2>/dev/null)
            p=${url#*@127.0.0.1:}
            ports+=("${p%%/*}")
        done
        echo "  nodes on ports ${ports[*]}"
        bench_target cluster "${ports[0]}" "${ports[@]}"
    fi
fi

if [ "$RUN_SINGLE" = 1 ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "== single node: meridian start --sql-addr 127.0.0.1:$port"
    if ! timeout 120 "$BIN" start --store "$WORK/single" --insecure --sql-addr "127.0.0.1:$port" \
            --background >"$WORK/start.out" 2>&1; then
        sed 's/^/    /' "$WORK/start.out"
        fail "single: meridian start failed"
    else
        bench_target single "$port" "$port"
    fi
fi

echo
[ "$FAILED" = 0 ] && echo "pgbench.sh: ok" || echo "pgbench.sh: FAILED (see above)"
exit "$FAILED"
