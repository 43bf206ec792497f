#!/usr/bin/env bash
# Set up, build and run every test: once in a release build, once under
# AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
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
exit $status
