#!/usr/bin/env bash
# Fails when a module includes a module of the same or a higher layer (design §10), except itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# model sits above common inside layer 0 (it uses common's hashing); same-layer modules never include each other.
declare -A layer=([common]=0 [model]=5 [config]=10 [telemetry]=10 [pprof]=10 [http]=20 [kube]=30
                  [sinks]=30 [discovery]=40 [scrape]=40 [server]=50 [app]=60)
status=0
for module in "${!layer[@]}"; do
  for dir in "include/pprofd/$module" "src/$module"; do
    [ -d "$dir" ] || continue
    while IFS=: read -r file _ included; do
      [ "$included" = "$module" ] && continue
      if [ -z "${layer[$included]+x}" ]; then
        echo "check-layers: $file includes unknown module $included" >&2; status=1
      elif [ "${layer[$included]}" -ge "${layer[$module]}" ]; then
        echo "check-layers: $file ($module, layer ${layer[$module]}) includes $included (layer ${layer[$included]})" >&2
        status=1
      fi
    done < <(grep -rHoE '#include "pprofd/[a-z]+/' "$dir" | sed -E 's|#include "pprofd/([a-z]+)/|\1|' |
             awk -F: '{print $1 ":" "x" ":" $2}')
  done
done
exit $status
