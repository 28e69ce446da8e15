#!/usr/bin/env bash
# Runs the libFuzzer targets for a while each, starting from the stored corpus.
# New interesting inputs land in build/fuzz/new-corpus/NAME/; copy the small useful ones into
# tests/fuzz/corpus/NAME/ so the normal test run replays them.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true
bash scripts/install-deps.sh
CC=clang cmake -S . -B build/fuzz -DLF_FUZZ=ON -DLF_BENCH=OFF -DLF_WERROR=ON >/dev/null
cmake --build build/fuzz -j "$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  mkdir -p "build/fuzz/new-corpus/$name"
  echo "== $t for ${secs}s"
  "build/fuzz/tests/$t" -max_total_time="$secs" -print_final_stats=1 \
    "build/fuzz/new-corpus/$name" "tests/fuzz/corpus/$name"
done
