#!/bin/sh
# Parser loading benchmark: events/s from the durable queue to committed MySQL rows for both loading
# methods (LOAD DATA LOCAL INFILE from memory, multi-row INSERT), and MariaDB's own LOAD DATA INFILE of
# the same rows from a file, in the same run, against a private local MariaDB (tests/lib/lfmariadb.py).
# Usage: bench/parser/run.sh [sessions [lines per session [workers]]]   (LF_BUILD_DIR defaults to
#        build/bench)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${LF_BUILD_DIR:-$root/build/bench}
bin=$build/bench/bench-parser
[ -x "$bin" ] || { echo "bench-parser not built in $build (cmake --build $build --target bench-parser)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/lfbench-parser.XXXXXX")
info=$dir/db.info
python3 "$root/tests/lib/lfmariadb.py" serve --parent-pid $$ > "$info" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
while [ ! -s "$info" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
read -r port socket user password < "$info"
"$bin" --port "$port" --user "$user" --password "$password" --sessions "${1:-100}" --lines "${2:-2000}" \
    --workers "${3:-2}" --tmp "$dir"
