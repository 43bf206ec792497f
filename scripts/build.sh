#!/usr/bin/env bash
# Build Meridian. Usage: scripts/build.sh [release|sanitize]  (default release)
# Build trees: build/ (release) and build-sanitize/ (ASan + UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
case "$kind" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DMERIDIAN_SANITIZE=ON -DMERIDIAN_BENCH=OFF) ;;
  *) echo "usage: $0 [release|sanitize]" >&2; exit 2 ;;
esac
[ -f "$dir/CMakeCache.txt" ] || cmake -S . -B "$dir" "${flags[@]}" >/dev/null
# the build's own status (grep may print nothing: its status is not ours)
set +e +o pipefail
cmake --build "$dir" -j "$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^-- '
rc="${PIPESTATUS[0]}"
set -e -o pipefail
exit "$rc"
