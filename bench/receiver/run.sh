#!/bin/sh
# Receiver benchmark: uploads/s and MB/s for 16 KiB, 256 KiB and 8 MiB sessions with 32 concurrent
# clients (keep-alive, signed, every upload a new session: verified, encrypted, fsync'd, indexed
# and queued), side by side with the limit: the same bytes written, fsync'd and renamed into the
# same directory by 32 threads with no processing. Prints the ratio and the receiver's peak RSS.
# Usage: bench/receiver/run.sh   (LF_BUILD_DIR defaults to build/bench; LF_BENCH_DIR picks the disk)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${LF_BUILD_DIR:-$root/build/bench}
drv=$build/bench/bench-receiver
[ -x "$drv" ] || drv=$build/bench-receiver
rx=$build/logferry-receiver
sign=$build/logferry-sign
[ -x "$drv" ] && [ -x "$rx" ] && [ -x "$sign" ] ||
    { echo "build bench-receiver, logferry-receiver and logferry-sign in $build first" >&2; exit 1; }
dir=${LF_BENCH_DIR:-$build/bench-receiver-scratch}
rm -rf "$dir"
mkdir -p "$dir/limit"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
cat > "$dir/receiver.conf" <<CONF
[log]
level = warn
[http]
listen = 127.0.0.1:0
port_file = $dir/port
body_tmp_dir = $dir
[store]
dir = $dir/sessions
index_path = $dir/index.db
keys_dir = $dir/keys
max_upload_size = 64M
[queue]
path = $dir/queue.db
[auth]
sites_file = $dir/sites
tokens_file = $dir/tokens
token_key_file = $dir/token.key
[limits]
min_free_disk = 0
CONF
pk=$("$sign" keygen "$dir/bench.sk")
"$rx" --config "$dir/receiver.conf" sites add bench "$pk" > /dev/null
"$rx" --config "$dir/receiver.conf" 2> "$dir/receiver.log" &
pid=$!
i=0
while [ ! -s "$dir/port" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat "$dir/receiver.log"; exit 1; }; sleep 0.05
done
port=$(cat "$dir/port")
printf '%-8s %12s %10s %12s %10s %7s\n' size uploads/s MB/s limit_up/s limit_MB/s ratio
for spec in 16384:4000 262144:800 8388608:64; do
    size=${spec%%:*}; count=${spec#*:}
    h=$("$drv" --mode http --port "$port" --sk "$dir/bench.sk" --site bench --size "$size" --count "$count" --clients 32)
    rm -rf "$dir/limit"; mkdir -p "$dir/limit"
    l=$("$drv" --mode disk --dir "$dir/limit" --size "$size" --count "$count" --clients 32)
    hu=$(echo "$h" | sed 's/.*uploads_per_s=\([0-9.]*\).*/\1/'); hm=$(echo "$h" | sed 's/.*mb_per_s=\([0-9.]*\).*/\1/')
    lu=$(echo "$l" | sed 's/.*uploads_per_s=\([0-9.]*\).*/\1/'); lm=$(echo "$l" | sed 's/.*mb_per_s=\([0-9.]*\).*/\1/')
    printf '%-8s %12s %10s %12s %10s %7s\n' "$size" "$hu" "$hm" "$lu" "$lm" "$(awk "BEGIN{printf \"%.2f\", $hm/$lm}")"
done
echo "receiver peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
