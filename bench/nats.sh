# Sourced by the bench run scripts that need NATS JetStream (bench/queue, bench/receiver): starts a
# standalone nats-server, or with LF_BENCH_NATS_NODES=N (N > 1) an N-node cluster on loopback, through
# tests/lib/lfnats.py, which stops it when the calling script is gone.
#   lf_bench_nats_start ROOT DIR   sets lf_nats_urls (comma-separated client URLs), lf_nats_nodes and
#                                  lf_nats_pid (kill it, or just exit, to stop the servers)

lf_bench_nats_start() {
    lf_nats_nodes=${LF_BENCH_NATS_NODES:-1}
    mkdir -p "$2"
    python3 "$1/tests/lib/lfnats.py" serve --nodes "$lf_nats_nodes" --parent-pid $$ --dir "$2/nats" > "$2/nats.urls" &
    lf_nats_pid=$!
    _i=0
    while [ ! -s "$2/nats.urls" ] && [ $_i -lt 600 ] && kill -0 "$lf_nats_pid" 2>/dev/null; do
        sleep 0.1; _i=$((_i + 1))
    done
    [ -s "$2/nats.urls" ] || { echo "nats-server did not start (is the nats-server package installed?)" >&2; return 1; }
    lf_nats_urls=$(head -1 "$2/nats.urls")
}
