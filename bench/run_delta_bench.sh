#!/usr/bin/env bash
# Delta and encoding cost per profile (docs/performance.md): generates real Go allocs profiles of
# ~50 KB, ~500 KB and ~5 MB (bench/gen) unless present, builds delta_bench in Release, runs it.
#
#   bench/run_delta_bench.sh [BUILD_DIR] [--min-seconds S]
#
# BUILD_DIR defaults to ./build-bench next to the source tree; profiles go to BUILD_DIR/profiles.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$src/../build-bench}"
shift || true
profiles="$build/profiles"

mkdir -p "$build"
build="$(cd "$build" && pwd)"
profiles="$build/profiles"

if [[ ! -f "$profiles/large-next.pb.gz" ]]; then
  echo "generating profiles into $profiles" >&2
  (cd "$src/bench/gen" && GOTOOLCHAIN=local GOFLAGS= go build -o "$build/delta-gen" .)
  "$build/delta-gen" -out "$profiles"
fi

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPPROFD_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target delta_bench -j"$(nproc)" >/dev/null

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$build/bench/delta_bench" "$profiles" "$@"
