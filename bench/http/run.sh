#!/bin/sh
# Requests/s of logferry's HTTP server (logferry-http-testserver) against Debian's nginx, both with
# one worker pinned to the same core, wrk pinned to the other core, keep-alive:
#   GET  a 20-byte body            (nginx: a static file)
#   PUT  a 64 KiB body             (nginx: the echo module reads the body into memory, then answers)
# Usage: LF_BUILD_DIR=build/bench bench/http/run.sh  (env: DURATION=5 ROUNDS=3 CONNS=32 SERVER_CPU=1 WRK_CPU=0)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${LF_BUILD_DIR:-$SRC/build/bench}
BIN=$BUILD/logferry-http-testserver
[ -x "$BIN" ] || BIN=$BUILD/tools/logferry-http-testserver
[ -x "$BIN" ] || { echo "logferry-http-testserver not built in $BUILD" >&2; exit 1; }
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-1}
WRK_CPU=${WRK_CPU:-0}
NGINX=${NGINX:-/usr/sbin/nginx}
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so

TMP=$(mktemp -d /tmp/lf-bench-http.XXXXXX)
chmod 755 "$TMP" # nginx workers run as nobody
OURS_PID=
NGINX_PID=
cleanup() {
    [ -n "$OURS_PID" ] && kill "$OURS_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- our server
taskset -c "$SERVER_CPU" "$BIN" --listen 127.0.0.1 --port 0 >"$TMP/ours.port" 2>"$TMP/ours.log" &
OURS_PID=$!
for _ in $(seq 50); do [ -s "$TMP/ours.port" ] && break; sleep 0.1; done
OURS_PORT=$(cat "$TMP/ours.port")

# --- nginx: private prefix, one worker, same core
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx/www" "$TMP/nginx/logs"
printf 'hello from logferry\n' >"$TMP/nginx/www/small"
cat >"$TMP/nginx/nginx.conf" <<CONF
load_module $ECHO_MODULE;
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    open_file_cache max=1000;
    sendfile on;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/nginx/www;
        location = /small { default_type text/plain; }
        location = /upload {
            client_max_body_size 1m;
            client_body_buffer_size 128k;
            echo_read_request_body;
            default_type application/json;
            echo '{"bytes":\$content_length}';
        }
        location = /upload-echo {
            client_max_body_size 1m;
            client_body_buffer_size 128k;
            echo_read_request_body;
            echo_request_body;
        }
    }
}
CONF
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$NGINX_PORT),0.2)" 2>/dev/null && break
    sleep 0.1
done

# Check both serve what we think, and that nginx really reads the 64 KiB body into memory.
head -c 65536 /dev/zero | tr '\0' 'x' >"$TMP/body"
curl -sf "http://127.0.0.1:$OURS_PORT/small" >/dev/null || { echo "our server does not answer" >&2; exit 1; }
curl -sf "http://127.0.0.1:$NGINX_PORT/small" >/dev/null || { echo "nginx does not answer" >&2; cat "$TMP/nginx/logs/error.log" >&2; exit 1; }
OURS_PUT=$(curl -sf -X PUT --data-binary @"$TMP/body" "http://127.0.0.1:$OURS_PORT/upload")
NGINX_ECHO=$(curl -sf -X PUT --data-binary @"$TMP/body" "http://127.0.0.1:$NGINX_PORT/upload-echo" | wc -c)
[ "$OURS_PUT" = '{"bytes":65536}' ] || { echo "ours PUT answered $OURS_PUT" >&2; exit 1; }
[ "$NGINX_ECHO" = 65536 ] || { echo "nginx echoed $NGINX_ECHO bytes of the body, not 65536" >&2; exit 1; }

NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
[ -n "$NGINX_WORKER" ] || { echo "no nginx worker process" >&2; exit 1; }
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# rps PID URL [SCRIPT]: prints "requests/s CPU-microseconds-per-request" of the server process PID.
# CPU time per request does not depend on what else runs on the machine; requests/s does.
rps() {
    pid=$1 url=$2
    c0=$(cpu_ticks "$pid")
    if [ $# -gt 2 ]; then
        out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$3" "$url")
    else
        out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")
    fi
    c1=$(cpu_ticks "$pid")
    echo "$out" >>"$TMP/wrk.log"
    if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
        echo "errors in wrk run against $url:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$out" | awk -v c="$((c1 - c0))" -v t="$TICK" '/Requests\/sec/ {r = $2}
        /requests in/ {n = $1} END {printf "%.0f %.1f\n", r, n ? c / t * 1e6 / n : 0}'
}

best() { # keeps the run with the higher requests/s: "rps cpu" "rps cpu"
    echo "$1|$2" | awk -F'|' '{split($1, a, " "); split($2, b, " "); print (a[1] + 0 >= b[1] + 0) ? $1 : $2}'
}

# The machine may be shared: alternate the two servers ROUNDS times and keep each one's best run.
ROUNDS=${ROUNDS:-3}
echo "wrk -t1 -c$CONNS -d${DURATION}s, servers on cpu $SERVER_CPU, wrk on cpu $WRK_CPU, best of $ROUNDS alternating rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
G_OURS="0 0" G_NGINX="0 0" P_OURS="0 0" P_NGINX="0 0"
for r in $(seq "$ROUNDS"); do
    G_OURS=$(best "$G_OURS" "$(rps "$OURS_PID" "http://127.0.0.1:$OURS_PORT/small")")
    G_NGINX=$(best "$G_NGINX" "$(rps "$NGINX_WORKER" "http://127.0.0.1:$NGINX_PORT/small")")
    P_OURS=$(best "$P_OURS" "$(rps "$OURS_PID" "http://127.0.0.1:$OURS_PORT/upload" "$HERE/put64k.lua")")
    P_NGINX=$(best "$P_NGINX" "$(rps "$NGINX_WORKER" "http://127.0.0.1:$NGINX_PORT/upload" "$HERE/put64k.lua")")
    echo "round $r best so far (req/s, CPU us/req): GET ours $G_OURS, nginx $G_NGINX; PUT ours $P_OURS, nginx $P_NGINX"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
line() { # name "rps cpu" "rps cpu"
    echo "$2 $3" | awk -v n="$1" '{printf "%-12s %10.0f %10.0f %6.2f   %9.1f %9.1f %6.2f\n", n, $1, $3, $1 / $3, $2, $4, $4 / $2}'
}
printf '%-12s %10s %10s %6s   %9s %9s %6s\n' test "ours r/s" "nginx r/s" ratio "ours us" "nginx us" ratio
line "GET small" "$G_OURS" "$G_NGINX"
line "PUT 64 KiB" "$P_OURS" "$P_NGINX"
echo "(ratio: ours/nginx for requests/s; nginx/ours for server CPU microseconds per request: > 1 means ours is cheaper)"
