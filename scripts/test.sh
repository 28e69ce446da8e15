#!/usr/bin/env bash
# Sets up and runs the whole test suite, as CI does:
#   1. installs every Debian package the project needs (scripts/install-deps.sh),
#   2. builds with -Werror and runs the suite (unit, integration, fuzz corpus replay),
#   3. builds again with AddressSanitizer and UndefinedBehaviorSanitizer and runs the suite again,
#   4. builds the libFuzzer targets with clang (compile check; fuzzing itself is scripts/fuzz.sh),
#   5. checks that docs/configuration.md and docs/man/ match the programs' tables (gen-docs.sh).
# Usage: scripts/test.sh [ctest arguments, e.g. -L unit or -R queue]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc)

bash scripts/install-deps.sh

build() { # build DIR [cmake options...]
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLF_WERROR=ON "$@" >"$dir.cmake.log" 2>&1 \
    || { cat "$dir.cmake.log"; return 1; }
  cmake --build "$dir" -j "$jobs"
}

run_suite() { # run_suite DIR
  (cd "$1" && ctest --output-on-failure --timeout 900 -j "$jobs" "${ctest_args[@]}")
}

ctest_args=("$@")
mkdir -p build
started=$(date +%s)

echo "== build (gcc, -Werror)"
build build/ci
echo "== test (gcc)"
run_suite build/ci

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
build build/asan -DLF_SANITIZE=ON -DLF_BENCH=OFF
echo "== test (sanitizers)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build/asan

echo "== build fuzz targets (clang, libFuzzer)"
CC=clang build build/fuzz -DLF_FUZZ=ON -DLF_BENCH=OFF

echo "== docs/configuration.md and the manual pages are generated from the tables"
bash scripts/gen-docs.sh --check build/ci

echo "== all passed in $(( $(date +%s) - started ))s"
