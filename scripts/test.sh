#!/usr/bin/env bash
# Set up, build and run every test: once in a release build, once under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzzers for a
# bounded time (scripts/fuzz.sh). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --fuzz
bash scripts/check-layers.sh
status=0
for kind in release sanitize; do
  dir=build; [ "$kind" = sanitize ] && dir=build-sanitize
  echo "=== $kind build ==="
  bash scripts/build.sh "$kind"
  echo "=== $kind tests ==="
  # halt_on_error keeps a sanitizer report fatal; detect_leaks is on by default.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" || status=1
done
# Then each libFuzzer harness for a minute (scripts/fuzz.sh; ~8 min with its
# clang build on 2 cores), when clang is there; a crash fails the run and is saved under
# tests/fuzz-regressions/. MERIDIAN_FUZZ_SECONDS=0 skips it.
fuzz_secs="${MERIDIAN_FUZZ_SECONDS:-60}"
if [ "$fuzz_secs" -gt 0 ] && command -v clang >/dev/null; then
  echo "=== fuzz (${fuzz_secs}s per harness) ==="
  bash scripts/fuzz.sh "$fuzz_secs" || status=1
elif [ "$fuzz_secs" -gt 0 ]; then
  echo "=== fuzz: skipped (no clang) ==="
fi
exit $status
