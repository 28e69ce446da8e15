#!/bin/sh
# Queue benchmark: durable sends/s at 1, 8 and 64 concurrent producers, receive+ack/s, the raw fsync
# rate of the same disk and the batching factor (sends per commit); in process (lf_queue directly),
# then over HTTP against a logferry-receiver started here in the scratch dir (sends = signed uploads
# of tiny pre-built sessions, receive+ack = POST /v1/queues/sessions/{receive,ack}).
# Usage: bench/queue/run.sh [seconds per phase]   (LF_BUILD_DIR defaults to build/bench;
#        LF_BENCH_DIR picks the disk to measure, default a scratch dir under the build dir;
#        LF_BENCH_HTTP=0 skips the HTTP part; LF_BENCH_POOL sessions pre-built, default 60000;
#        LF_BENCH_ARGS more bench-queue options, e.g. --http-only; LF_BENCH_NATS=0 skips the JetStream
#        part, LF_BENCH_NATS_NODES=3 runs it on a 3-node cluster on loopback with 3 replicas)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${LF_BUILD_DIR:-$root/build/bench}
bin=$build/bench/bench-queue
[ -x "$bin" ] || { echo "bench-queue not built in $build (cmake --build $build --target bench-queue)" >&2; exit 1; }
dir=${LF_BENCH_DIR:-$build/bench-queue-scratch}
secs=${1:-3}
mkdir -p "$dir"
rxpid=
natspid=
cleanup() {
    [ -n "$rxpid" ] && kill "$rxpid" 2>/dev/null
    [ -n "$natspid" ] && kill "$natspid" 2>/dev/null
    wait 2>/dev/null
    [ -n "${LF_BENCH_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM
if [ "${LF_BENCH_HTTP:-1}" = 0 ]; then
    exec_args=""
else
    rxbin=$build/logferry-receiver
    signbin=$build/logferry-sign
    [ -x "$signbin" ] || signbin=$build/tools/logferry-sign
    [ -x "$rxbin" ] && [ -x "$signbin" ] || { echo "logferry-receiver and logferry-sign must be built in $build" >&2; exit 1; }
    rx=$dir/rx
    mkdir -p "$rx"
    cat > "$rx/receiver.conf" <<CONF
[log]
level = ${LF_BENCH_LOG:-warn}
[http]
listen = 127.0.0.1:0
port_file = $rx/port
body_tmp_dir = $rx
[store]
dir = $rx/sessions
index_path = $rx/index.db
keys_dir = $rx/keys
[queue]
path = $rx/queue.db
[auth]
sites_file = $rx/sites
tokens_file = $rx/tokens
token_key_file = $rx/token.key
signature_window = 10m
[limits]
min_free_disk = 0
CONF
    pk=$("$signbin" keygen "$rx/site.sk")
    "$rxbin" --config "$rx/receiver.conf" sites add bench-site "$pk" >/dev/null
    token=$("$rxbin" --config "$rx/receiver.conf" tokens add bench-worker --scope worker)
    python3 "$here/make_pool.py" bench-site "${LF_BENCH_POOL:-60000}" "$rx/pool"
    "$rxbin" --config "$rx/receiver.conf" 2>"$rx/receiver.log" &
    rxpid=$!
    i=0
    while [ ! -s "$rx/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$rx/port" ] || { echo "receiver did not start:" >&2; cat "$rx/receiver.log" >&2; exit 1; }
    exec_args="--http-port $(cat "$rx/port") --pool $rx/pool --sk $rx/site.sk --site bench-site --token $token"
fi
if [ "${LF_BENCH_NATS:-1}" != 0 ]; then
    . "$root/bench/nats.sh"
    lf_bench_nats_start "$root" "$dir" || { echo "(LF_BENCH_NATS=0 skips it)" >&2; exit 1; }
    natspid=$lf_nats_pid
    exec_args="$exec_args --nats $lf_nats_urls --nats-replicas $lf_nats_nodes"
fi
# shellcheck disable=SC2086
"$bin" --dir "$dir" --seconds "$secs" --consumers 16 --batch 10 ${LF_BENCH_ARGS:-} $exec_args
