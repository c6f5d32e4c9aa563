#!/usr/bin/env bash
# pprofd's cost benchmark (issue 5): builds pprofd in Release and the Go target simulator,
# records real Go profiles once, then for each target count starts the simulator, the Kubernetes
# API fake (one pod per target), a fast Pyroscope-push receiver and pprofd, measures a window of
# whole scrape intervals and prints one JSON line per point (bench/loadtest.py). With more than
# one target count it also writes the scale curve: a markdown table and a PNG plot.
#
#   bench/run.sh [--targets N[,N...]] [--rate PROFILES_PER_S] [--intervals K]
#                [--build DIR] [--out DIR] [--pprofd BIN]
#
#   bench/run.sh --targets 10000                  # one point
#   bench/run.sh --targets 100,1000,5000,10000    # the curve in docs/benchmarks.md
#
# The interval is targets*5/rate seconds (5 profile types per target), at least 4 s, so every
# point runs at about the same profiles/s where the target count allows it.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets="10000"
rate="1000"
intervals="2"
build="$src/../build-bench"
out=""
pprofd=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --targets) targets="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --intervals) intervals="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --pprofd) pprofd="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

"$src/scripts/install-deps.sh" --bench
# Debian's interpreter, where install-deps.sh put matplotlib (a pyenv python3 may come first).
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3
mkdir -p "$build"
build="$(cd "$build" && pwd)"
out="${out:-$build/results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"

if [[ -z "$pprofd" ]]; then
  echo "run.sh: building pprofd (Release) in $build" >&2
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPPROFD_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" --target pprofd -j"$(nproc)" >/dev/null
  pprofd="$build/src/pprofd"
fi
(cd "$src/bench/sim" && GOTOOLCHAIN=local GOFLAGS= go build -o "$build/sim" .)
if [[ ! -f "$build/sim-profiles/manifest.json" ]]; then
  echo "run.sh: recording Go profiles into $build/sim-profiles" >&2
  "$build/sim" record -out "$build/sim-profiles"
fi

# One listener and one pprofd connection per target.
ulimit -n "$(ulimit -Hn)"
{
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "kernel: $(uname -r); pprofd $("$pprofd" version 2>/dev/null | head -1)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$py" - "$build/sim-profiles/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"profiles: recorded from a Go {m['go_version'][2:]} workload, MemProfileRate {m['mem_profile_rate']}, "
      f"{m['snapshots']} snapshots; mean gzipped / uncompressed / samples per type:")
for name, t in sorted(m["types"].items()):
    print(f"  {name:9} {t['compressed_bytes']['mean'] / 1000:6.1f} KB {t['uncompressed_bytes']['mean'] / 1000:7.1f} KB "
          f"{t['samples']['mean']:7.0f}")
PY
} | tee "$out/machine.txt" >&2

IFS=, read -r -a counts <<<"$targets"
for n in "${counts[@]}"; do
  echo "run.sh: $n targets" >&2
  "$py" "$src/bench/loadtest.py" --pprofd "$pprofd" --sim "$build/sim" \
    --profiles "$build/sim-profiles" --targets "$n" --rate "$rate" --intervals "$intervals" \
    --out "$out/results.jsonl"
done
"$py" "$src/bench/report.py" "$out/results.jsonl" --machine "$out/machine.txt" \
  --markdown "$out/benchmarks.md" --plot "$out/scale.png"
echo "run.sh: results in $out" >&2
