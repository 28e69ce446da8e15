#!/bin/sh
# Time of one incremental daily run of logferry-analytics as history grows (docs/analytics.md).
# Expects built programs in $LF_BUILD_DIR (default build/bench). BENCH_DAYS (default 100),
# BENCH_EVENTS_PER_DAY (default 100000) and BENCH_SAMPLES (default "1 10 25 50 100") scale it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export LF_BUILD_DIR="${LF_BUILD_DIR:-build/bench}"
exec python3 "$here/bench.py"
