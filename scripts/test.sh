#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every test.
#   scripts/test.sh              normal build + all tests, then an ASan/UBSan build + all tests
#   PPROFD_SANITIZE=0 scripts/test.sh   skip the sanitizer pass
# Build directories: build/ and build-asan/ (override with BUILD_DIR / ASAN_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-$(nproc)}
started=$(date +%s)
scripts/install-deps.sh

scripts/check-layers.sh

if command -v clang-format >/dev/null 2>&1; then
  unformatted=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null | xargs -r clang-format --dry-run -Werror 2>&1 | grep -c 'error:' || true)
  if [ "$unformatted" != "0" ]; then
    echo "test.sh: clang-format finds $unformatted formatting problems (run: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i)" >&2
    exit 1
  fi
fi

# build_and_test DIR "CTEST ARGS" CMAKE ARGS...
build_and_test() {
  local dir=$1 ctest_args=$2
  shift 2
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  # shellcheck disable=SC2086 # ctest_args is a list of words
  (cd "$dir" && ctest --output-on-failure -j1 --timeout 600 $ctest_args)
}

build_and_test "${BUILD_DIR:-build}" "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${PPROFD_SANITIZE:-1}" = 1 ]; then
  # Sanitizers: any report fails the run (halt_on_error), leaks included. The minute-long
  # outage tests (label "slow") exercise the same code paths as the rest and run only above.
  export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export PPROFD_SANITIZED=1
  build_and_test "${ASAN_BUILD_DIR:-build-asan}" "-LE slow" -DCMAKE_BUILD_TYPE=Debug -DPPROFD_SANITIZE=ON
fi
echo "test.sh: all tests passed in $(( $(date +%s) - started ))s"
