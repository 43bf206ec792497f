#!/usr/bin/env bash
# Build the libFuzzer harnesses (fuzz/) with clang, ASan and UBSan in
# build-fuzz/, and run each for SECONDS (default 60; `scripts/fuzz.sh 600`
# for a longer run). Usage: scripts/fuzz.sh [SECONDS] [NAME ...]
# (names: pgwire scram rpc_frame sql; default all).
#
# A crash (or a leak, an out-of-memory, a timeout) is saved under
# tests/fuzz-regressions/NAME/ (replayed by the ctest fuzz_replay_NAME in
# every build from then on) and the script exits 1 once every harness ran.
# New coverage goes to build-fuzz/corpus/NAME/ (not committed; copy inputs
# worth keeping to fuzz/corpus/NAME/). Exit 2: no clang, bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
[ "$#" -gt 0 ] && shift
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] [NAME ...]" >&2; exit 2 ;; esac
names=("$@")
[ "${#names[@]}" -eq 0 ] && names=(pgwire scram rpc_frame sql)
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "fuzz: clang not found (apt-get install clang)" >&2
  exit 2
fi

dir=build-fuzz
if [ ! -f "$dir/CMakeCache.txt" ]; then
  # -Wno-error: clang warns about other things than gcc; the gcc builds of
  # scripts/test.sh keep -Werror, so a clang-only warning must not stop fuzzing.
  CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMERIDIAN_SANITIZE=ON -DMERIDIAN_FUZZ=ON -DMERIDIAN_TESTS=OFF -DMERIDIAN_BENCH=OFF \
    -DCMAKE_C_FLAGS=-Wno-error >/dev/null
fi
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build "$dir" -j "$(nproc)" --target "${targets[@]}" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^-- ' || true
test "${PIPESTATUS[0]}" -eq 0

status=0
for n in "${names[@]}"; do
  work="$dir/corpus/$n"
  art="$dir/artifacts/$n"
  mkdir -p "$work" "$art"
  rm -f "$art"/*
  flags=() seeds=()
  [ -f "fuzz/$n.dict" ] && flags+=("-dict=fuzz/$n.dict")
  [ -d "tests/fuzz-regressions/$n" ] && seeds+=("tests/fuzz-regressions/$n")
  echo "=== fuzz $n: ${secs}s ==="
  # -timeout: one input at most 30 s (fuzz_sql cancels a statement at 1 s);
  # the first corpus directory receives new inputs, the others are seeds.
  rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/fuzz/fuzz_$n" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$art/" "${flags[@]}" \
      "$work" "fuzz/corpus/$n" "${seeds[@]}" >"$dir/fuzz-$n.log" 2>&1 || rc=$?
  tail -n 12 "$dir/fuzz-$n.log" | grep -E '^(stat::|Done|==|SUMMARY|#)' || true
  found=("$art"/*)
  if [ "$rc" -ne 0 ] || [ -e "${found[0]}" ]; then
    status=1
    mkdir -p "tests/fuzz-regressions/$n"
    for f in "${found[@]}"; do
      [ -e "$f" ] || continue
      cp "$f" "tests/fuzz-regressions/$n/"
      echo "fuzz $n: FAILED (exit $rc): saved tests/fuzz-regressions/$n/$(basename "$f")" >&2
    done
    [ -e "${found[0]}" ] || echo "fuzz $n: FAILED (exit $rc) without an input; see $dir/fuzz-$n.log" >&2
    grep -m 20 -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$dir/fuzz-$n.log" >&2 || true
  fi
done
exit $status
