#!/bin/sh
# Prints GA/PA/FTA per Loghub system and their mean, and lines/s of the whole `logferry-parser parse`
# process per system with the median; then GA/PA/FTA with every setting chosen leaving the system
# out (docs/parsing.md). Expects a built tree in $LF_BUILD_DIR (default build/bench).
# Usage: bench/parse-accuracy/run.sh [DIR [OPTION...]]   (DIR defaults to ../shared/loghub; the
#        options go to bench-parse-accuracy: --no-speed, --no-loso, --verbatim, --batch N, ...)
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
bd=${LF_BUILD_DIR:-$here/build/bench}
dir=${1:-$here/../shared/loghub}
[ $# -gt 0 ] && shift
LF_BUILD_DIR=$bd exec "$bd/bench/bench-parse-accuracy" --runs "${LF_BENCH_RUNS:-5}" "$@" "$dir"
