#!/usr/bin/env bash
# Dependencies point down: a module may include only modules beneath it.
# Order, bottom first. A module's own *_int.h headers stay inside its folder.
set -euo pipefail
cd "$(dirname "$0")/.."
layers=(base timestamp security encoding storage raft rpc range txn sql gateway server cli)
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && echo "$i" && return; done; echo -1; }
bad=0
for mod in "${layers[@]}"; do
  [ -d "$mod" ] || continue
  r=$(rank "$mod")
  while IFS= read -r line; do
    file="${line%%:*}"
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")
    dep="${inc%%/*}"
    [ "$dep" = "$inc" ] && continue          # same-folder include
    [ "$dep" = "$mod" ] && continue
    d=$(rank "$dep")
    [ "$d" -lt 0 ] && continue
    if [ "$d" -ge "$r" ] || { [[ "$inc" == *_int.h ]]; }; then
      echo "layering violation: $file includes $inc" >&2; bad=1
    fi
  done < <(grep -Hn '#include "' "$mod"/*.[ch] 2>/dev/null || true)
done
# timestamp and encoding are siblings: neither includes the other.
exit $bad
