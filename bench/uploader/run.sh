#!/bin/sh
# Uploader benchmark: sessions/s, MB/s, CPU seconds per GB and peak RSS of `logferry-uploader once`
# shipping generated sessions to a real receiver, side by side in the same run with the naive way
# (a zip, a signer and a curl process per file) against the same receiver. Peak RSS comes from GNU
# time(1) (see bench.py for why not from Python).
# Usage: bench/uploader/run.sh  (LF_BUILD_DIR defaults to build/bench; needs logferry-uploader,
# logferry-receiver, logferry-sign and logferry-sessiongen built there; LF_BENCH_SESSIONS=1500,
# LF_BENCH_NAIVE_SESSIONS=400 by default)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export LF_BUILD_DIR=${LF_BUILD_DIR:-$root/build/bench}
for b in logferry-uploader logferry-receiver logferry-sign logferry-sessiongen; do
    [ -x "$LF_BUILD_DIR/$b" ] || { echo "build $b in $LF_BUILD_DIR first" >&2; exit 1; }
done
command -v zip >/dev/null && command -v curl >/dev/null || { echo "needs zip and curl" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time, Debian package time) for peak RSS" >&2; exit 1; }
exec python3 "$here/bench.py"
