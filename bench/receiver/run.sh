#!/bin/sh
# Receiver benchmark: uploads/s, MB/s and p50/p99 upload latency for 16 KiB, 256 KiB and 8 MiB sessions
# with 32 concurrent clients (keep-alive, signed, every upload a new session: verified, encrypted,
# fsync'd, indexed and queued), on both queue backends side by side: a receiver on the embedded queue
# (SQLite) and one on JetStream (the session id claimed in the LF_SESSIONS bucket and published, both
# acknowledged by JetStream before the answer; a nats-server started here, see bench/nats.sh). Then the limit: the same bytes written, fsync'd and
# renamed into the same directory by 32 threads with no processing. Each run starts a fresh receiver
# per backend, alternating which backend goes first; the table holds the medians over the runs, the
# ratio JetStream/embedded and each backend's largest peak RSS (every run's figures go to stderr). The
# JetStream receiver runs with its defaults ([queue] max_publishes = 8: further publishes wait their
# turn) unless LF_BENCH_MAX_PUBLISHES says otherwise.
# Usage: bench/receiver/run.sh [runs, default 3]   (LF_BUILD_DIR defaults to build/bench;
#        LF_BENCH_DIR picks the disk; LF_BENCH_NATS=0 skips JetStream; LF_BENCH_NATS_NODES=3 runs
#        JetStream on a 3-node cluster on loopback with 3 replicas; LF_BENCH_SIZES lists SIZE:COUNT,
#        default "16384:4000 262144:800 8388608:64"; LF_BENCH_MAX_PUBLISHES for the JetStream receiver)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${LF_BUILD_DIR:-$root/build/bench}
drv=$build/bench/bench-receiver
[ -x "$drv" ] || drv=$build/bench-receiver
rx=$build/logferry-receiver
sign=$build/logferry-sign
[ -x "$sign" ] || sign=$build/tools/logferry-sign
[ -x "$drv" ] && [ -x "$rx" ] && [ -x "$sign" ] ||
    { echo "build bench-receiver, logferry-receiver and logferry-sign in $build first" >&2; exit 1; }
runs=${1:-3}
sizes=${LF_BENCH_SIZES:-"16384:4000 262144:800 8388608:64"}
dir=${LF_BENCH_DIR:-$build/bench-receiver-scratch}
rm -rf "$dir"
mkdir -p "$dir"
pid=
natspid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    [ -n "$natspid" ] && kill "$natspid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
backends=embedded
if [ "${LF_BENCH_NATS:-1}" != 0 ]; then
    . "$root/bench/nats.sh"
    lf_bench_nats_start "$root" "$dir" || { echo "(LF_BENCH_NATS=0 skips it)" >&2; exit 1; }
    natspid=$lf_nats_pid
    backends="embedded jetstream"
fi
pk=$("$sign" keygen "$dir/bench.sk")
results=$dir/results # lines: KIND SIZE uploads/s MB/s p50_ms p99_ms, or rss BACKEND KiB

# JetStream: publishes in flight at once (empty: the receiver's default)
max_publishes=${LF_BENCH_MAX_PUBLISHES:-}

# start_receiver BACKEND DIR: a fresh receiver there; sets pid and port
start_receiver() {
    mkdir -p "$2"
    cat > "$2/receiver.conf" <<CONF
[log]
level = warn
[http]
listen = 127.0.0.1:0
port_file = $2/port
body_tmp_dir = $2
[store]
dir = $2/sessions
index_path = $2/index.db
keys_dir = $2/keys
max_upload_size = 64M
[queue]
path = $2/queue.db
CONF
    if [ "$1" = jetstream ]; then
        printf 'backend = jetstream\nservers = %s\nreplicas = %s\n' "$lf_nats_urls" "$lf_nats_nodes" >> "$2/receiver.conf"
        [ -z "$max_publishes" ] || printf 'max_publishes = %s\n' "$max_publishes" >> "$2/receiver.conf"
    fi
    cat >> "$2/receiver.conf" <<CONF
[auth]
sites_file = $2/sites
tokens_file = $2/tokens
token_key_file = $2/token.key
[limits]
min_free_disk = 0
CONF
    "$rx" --config "$2/receiver.conf" sites add bench "$pk" > /dev/null
    "$rx" --config "$2/receiver.conf" 2> "$2/receiver.log" &
    pid=$!
    i=0
    while [ ! -s "$2/port" ]; do
        i=$((i + 1))
        [ $i -lt 400 ] && kill -0 "$pid" 2>/dev/null || { echo "receiver ($1) did not start:" >&2; cat "$2/receiver.log" >&2; exit 1; }
        sleep 0.05
    done
    port=$(cat "$2/port")
}

# field NAME LINE: the value of NAME=... in the driver's output line
field() { echo "$2" | sed "s/.* $1=\([0-9.]*\).*/\1/"; }
record() {
    echo "$1 $2 $(field uploads_per_s "$3") $(field mb_per_s "$3") $(field p50_ms "$3") $(field p99_ms "$3")" >> "$results"
    echo "run $r $1 size $2: $(field uploads_per_s "$3") uploads/s, $(field mb_per_s "$3") MB/s, p50/p99 $(field p50_ms "$3")/$(field p99_ms "$3") ms" >&2
}

r=1
while [ $r -le "$runs" ]; do
    # alternate which backend goes first, so that neither always meets the disk's state after the other
    if [ $((r % 2)) = 1 ]; then order=$backends; else order=$(echo "$backends" | awk '{for (i = NF; i; i--) printf "%s ", $i}'); fi
    for b in $order; do
        start_receiver "$b" "$dir/rx-$b-$r"
        for spec in $sizes; do
            size=${spec%%:*}; count=${spec#*:}
            out=$("$drv" --mode http --port "$port" --sk "$dir/bench.sk" --site bench --size "$size" --count "$count" --clients 32) ||
                { echo "upload failures on $b: $out; receiver log:" >&2; tail -20 "$dir/rx-$b-$r/receiver.log" >&2; exit 1; }
            record "$b" "$size" "$out"
        done
        echo "rss $b $(awk '/VmHWM/{print $2}' /proc/$pid/status)" >> "$results"
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
        rm -rf "$dir/rx-$b-$r"
    done
    for spec in $sizes; do
        size=${spec%%:*}; count=${spec#*:}
        rm -rf "$dir/limit"; mkdir -p "$dir/limit"
        record limit "$size" "$("$drv" --mode disk --dir "$dir/limit" --size "$size" --count "$count" --clients 32)"
    done
    rm -rf "$dir/limit"
    r=$((r + 1))
done

# med KIND SIZE COLUMN: the median of that column over the runs ("-" when there is none)
med() {
    awk -v k="$1" -v s="$2" -v c="$3" '$1 == k && $2 == s {print $c}' "$results" | sort -g |
        awk '{v[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ratio() { [ "$1" = - ] || [ "$2" = - ] && echo - || awk "BEGIN{printf \"%.2f\", $2 / $1}"; }
echo "medians of $runs runs, 32 clients${natspid:+, JetStream on $lf_nats_nodes node(s) with $lf_nats_nodes replica(s)}"
printf '%-8s | %9s %9s %6s | %8s %8s %6s | %13s %13s | %10s\n' size emb_up/s js_up/s js/emb emb_MB/s js_MB/s js/emb \
    emb_p50/p99ms js_p50/p99ms limit_MB/s
for spec in $sizes; do
    size=${spec%%:*}
    eu=$(med embedded "$size" 3); ju=$(med jetstream "$size" 3)
    em=$(med embedded "$size" 4); jm=$(med jetstream "$size" 4)
    printf '%-8s | %9s %9s %6s | %8s %8s %6s | %13s %13s | %10s\n' "$size" "$eu" "$ju" "$(ratio "$eu" "$ju")" "$em" "$jm" \
        "$(ratio "$em" "$jm")" "$(med embedded "$size" 5)/$(med embedded "$size" 6)" \
        "$(med jetstream "$size" 5)/$(med jetstream "$size" 6)" "$(med limit "$size" 4)"
done
for b in $backends; do
    echo "receiver peak RSS ($b, largest over the runs): $(awk -v b="$b" '$1 == "rss" && $2 == b && $3 > m {m = $3} END {print m}' "$results") kB"
done
