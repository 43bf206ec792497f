#!/usr/bin/env bash
# Run many seeds of the deterministic Raft simulator (tests/raft/rsim.c).
#
#   scripts/raft-sim.sh [SEEDS] [FIRST] [JOBS]       run in the foreground
#   scripts/raft-sim.sh --background [SEEDS] [FIRST] [JOBS]
#                                                    detach; log in $BUILD/raft-sim.log
#                                                    (raft-sim-reallog.log with --real-log)
#   scripts/raft-sim.sh --real-log [...]             the slower mode: every node
#                                                    also persists through the real
#                                                    log store (test_raft_sim_reallog;
#                                                    temp dirs under $MERIDIAN_SIM_DIR,
#                                                    else /dev/shm); combines with
#                                                    --background (either order)
#
# Defaults: SEEDS=100000, FIRST=1, JOBS=1. Builds test_raft_sim (release) in
# $RAFT_SIM_BUILD (default build-raft-sim), runs the seeds in chunks of
# 10000 (JOBS chunks at a time), and prints how many passed and the failing
# seeds; replay one with
#   MERIDIAN_SEED=<seed> RSIM_TRACE=1 <build>/tests/raft/test_raft_sim
# (add MERIDIAN_SIM_REAL_LOG=1 for a seed of the real-log mode).
# Exit status: 0 if every seed passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${RAFT_SIM_BUILD:-$root/build-raft-sim}

target=test_raft_sim
background=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --background) background=1; shift ;;
    --real-log) target=test_raft_sim_reallog; shift ;;
    *) break ;;
  esac
done

if [ "$background" = 1 ]; then
  mkdir -p "$build"
  flags=()
  log="$build/raft-sim.log"
  if [ "$target" = test_raft_sim_reallog ]; then
    flags=(--real-log)
    log="$build/raft-sim-reallog.log"
  fi
  nohup "$0" "${flags[@]}" "$@" >"$log" 2>&1 &
  echo "raft-sim: running in the background (pid $!), log: $log"
  exit 0
fi

seeds=${1:-100000}
first=${2:-1}
jobs=${3:-1}
chunk=10000

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMERIDIAN_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target "$target" >/dev/null
bin="$build/tests/raft/$target"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

start=$(date +%s)
next=$first
end=$((first + seeds))
pids=()
while [ "$next" -lt "$end" ]; do
  n=$chunk
  [ $((next + n)) -gt "$end" ] && n=$((end - next))
  MERIDIAN_SIM_FIRST=$next MERIDIAN_SIM_SEEDS=$n "$bin" >"$out/$next.out" 2>&1 &
  pids+=($!)
  next=$((next + n))
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || true
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || true; done

ran=0; failed=0
for f in "$out"/*.out; do
  line=$(grep -Eo 'raft sim: [0-9]+ seeds from [0-9]+, [0-9]+ failed' "$f" || true)
  if [ -z "$line" ]; then
    echo "raft-sim: a chunk crashed:"; tail -20 "$f"; failed=$((failed + 1)); continue
  fi
  ran=$((ran + $(awk '{print $3}' <<<"$line")))
  failed=$((failed + $(awk '{print $7}' <<<"$line")))
  grep -E '^FAIL' "$f" || true
done
echo "raft-sim ($target): $ran seeds from $first, $((ran - failed)) passed, $failed failed ($(( $(date +%s) - start )) s)"
echo "(a chunk stops after 10 failures; rerun from the last failing seed to see more)"
[ "$failed" -eq 0 ]
