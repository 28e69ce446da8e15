#!/bin/sh
# Pipeline benchmark: sessions/s and events/s from the first upload to the moment MySQL's sessions
# table holds every session (polled; the clock stops at the first count that has them all), through
# a real receiver, real parsers and a private MariaDB, in four cells side by side: the embedded queue
# and JetStream (a nats-server started per cell), each with one and with two parser processes of 2
# workers. Cells are interleaved run by run (the machine's other load falls on all of them); the
# table holds the medians and ranges, and the ratios JetStream/embedded and two parsers/one. Every
# cell checks that each session is in MySQL once with all its events. A second table gives the CPU
# seconds per 1000 sessions of the receiver, the parsers, mariadbd and nats-server (for sizing).
# Usage: bench/pipeline/run.sh   (LF_BUILD_DIR defaults to build/bench; needs logferry-receiver,
#        logferry-parser and logferry-sign built there, mariadb-server and nats-server installed;
#        LF_BENCH_SESSIONS=1000 per cell, LF_BENCH_RUNS=3, LF_BENCH_MAX_LINES=2000 lines in the longest
#        session, LF_BENCH_NATS_NODES=3 runs JetStream on a 3-node cluster on loopback with 3 replicas;
#        a cell where no session reaches MySQL for 2 minutes stops the run with the parsers' stacks)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export LF_BUILD_DIR=${LF_BUILD_DIR:-$root/build/bench}
for b in logferry-receiver logferry-parser; do
    [ -x "$LF_BUILD_DIR/$b" ] || { echo "build $b in $LF_BUILD_DIR first" >&2; exit 1; }
done
[ -x "$LF_BUILD_DIR/logferry-sign" ] || [ -x "$LF_BUILD_DIR/tools/logferry-sign" ] ||
    { echo "build logferry-sign in $LF_BUILD_DIR first" >&2; exit 1; }
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { echo "needs mariadb-server (mariadbd)" >&2; exit 1; }
exec python3 "$here/bench.py"
