#!/bin/sh
# Queue benchmark (in-process part): durable sends/s at 1, 8 and 64 concurrent producers, receive+ack/s,
# the raw fsync rate of the same disk and the batching factor (sends per commit).
# Usage: bench/queue/run.sh [seconds per phase]   (LF_BUILD_DIR defaults to build/bench;
#        LF_BENCH_DIR picks the disk to measure, default a scratch dir under the build dir)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${LF_BUILD_DIR:-$root/build/bench}
bin=$build/bench/bench-queue
[ -x "$bin" ] || { echo "bench-queue not built in $build (cmake --build $build --target bench-queue)" >&2; exit 1; }
dir=${LF_BENCH_DIR:-$build/bench-queue-scratch}
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT INT TERM
"$bin" --dir "$dir" --seconds "${1:-3}" --consumers 16 --batch 10
