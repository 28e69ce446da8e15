#!/bin/sh
# Requests/s of logferry's HTTP server (logferry-http-testserver) against Debian's nginx, both with
# one worker pinned to the same core, wrk pinned to the other core, keep-alive:
#   GET  a 20-byte body            (nginx: a static file)
#   PUT  a 64 KiB body             (nginx: the echo module reads the body into memory, then answers)
# Usage: LF_BUILD_DIR=build/bench bench/http/run.sh     (env: DURATION=8 CONNS=32 SERVER_CPU=1 WRK_CPU=0)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${LF_BUILD_DIR:-$SRC/build/bench}
BIN=$BUILD/logferry-http-testserver
[ -x "$BIN" ] || BIN=$BUILD/tools/logferry-http-testserver
[ -x "$BIN" ] || { echo "logferry-http-testserver not built in $BUILD" >&2; exit 1; }
DURATION=${DURATION:-8}
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

rps() { # url [script]
    if [ $# -gt 1 ]; then
        taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$2" "$1"
    else
        taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1"
    fi | tee -a "$TMP/wrk.log" | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "ERR non-2xx " $0 > "/dev/stderr"}'
}

echo "wrk -t1 -c$CONNS -d${DURATION}s, servers on cpu $SERVER_CPU, wrk on cpu $WRK_CPU"
G_OURS=$(rps "http://127.0.0.1:$OURS_PORT/small")
G_NGINX=$(rps "http://127.0.0.1:$NGINX_PORT/small")
P_OURS=$(rps "http://127.0.0.1:$OURS_PORT/upload" "$HERE/put64k.lua")
P_NGINX=$(rps "http://127.0.0.1:$NGINX_PORT/upload" "$HERE/put64k.lua")
printf '%-16s %12s %12s %8s\n' test logferry nginx ratio
printf '%-16s %12s %12s %8s\n' "GET small" "$G_OURS" "$G_NGINX" "$(echo "$G_OURS $G_NGINX" | awk '{printf "%.2f", $1/$2}')"
printf '%-16s %12s %12s %8s\n' "PUT 64 KiB" "$P_OURS" "$P_NGINX" "$(echo "$P_OURS $P_NGINX" | awk '{printf "%.2f", $1/$2}')"
