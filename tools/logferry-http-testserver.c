/* A tiny server on lf_http_server for the attack test and the benchmark.
 *   GET /small     a short text body
 *   PUT /upload    body up to --upload-max (1 MiB); answers {"bytes":N}
 *   GET /healthz   {"status":"ok"}
 * Prints the port it listens on (one line on stdout), drains and exits 0 on SIGTERM or SIGINT, and
 * writes its counters to stderr as one "stats ..." line on the way out. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "lf_http_server.h"
#include "lf_log.h"

static uv_signal_t sig_term, sig_int;
static lf_http_server *server;

static void get_small(lf_http_request *req)
{
    static const char body[] = "hello from logferry\n";
    lf_http_respond(req, 200, "text/plain", body, sizeof body - 1, NULL);
}

static void get_healthz(lf_http_request *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    lf_http_respond(req, 200, "application/json", body, sizeof body - 1, NULL);
}

static void put_upload(lf_http_request *req)
{
    uint64_t n = 0;
    if (req->body.fd >= 0) {
        /* count what is really in the spilled file, not just what the header said */
        char buf[65536];
        ssize_t r;
        while ((r = read(req->body.fd, buf, sizeof buf)) > 0)
            n += (uint64_t)r;
        if (r < 0) {
            lf_http_respond_error(req, 500, "io", strerror(errno), NULL);
            return;
        }
    } else {
        n = req->body.len;
    }
    char out[64];
    int len = snprintf(out, sizeof out, "{\"bytes\":%" PRIu64 "}", n);
    lf_http_respond(req, 200, "application/json", out, (size_t)len, NULL);
}

static void on_drained(lf_http_server *srv, void *arg)
{
    lf_http_server_stats st;
    lf_http_server_get_stats(srv, &st);
    fprintf(stderr,
            "stats accepted=%" PRIu64 " rejected=%" PRIu64 " requests=%" PRIu64 " 2xx=%" PRIu64
            " 4xx=%" PRIu64 " 5xx=%" PRIu64 " timeouts=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64 "\n",
            st.connections_accepted, st.connections_rejected, st.requests, st.responses_2xx,
            st.responses_4xx, st.responses_5xx, st.timeouts, st.bytes_in, st.bytes_out);
    lf_http_server_free(srv);
    server = NULL;
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (server)
        lf_http_server_drain(server, on_drained, NULL);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: logferry-http-testserver [--listen ADDR] [--port N] [--upload-max BYTES]\n"
            "  [--max-connections N] [--header-timeout-ms MS] [--body-timeout-ms MS]\n"
            "  [--idle-timeout-ms MS] [--send-timeout-ms MS] [--body-memory-max BYTES]\n"
            "  [--max-header-bytes N] [--max-headers N] [--max-url N] [--tmp-dir DIR]\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1";
    int port = 0;
    uint64_t upload_max = 1024 * 1024;
    lf_http_server_limits limits;
    lf_http_server_limits_default(&limits);
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},        {"port", required_argument, 0, 'p'},
        {"upload-max", required_argument, 0, 'u'},    {"max-connections", required_argument, 0, 'c'},
        {"header-timeout-ms", required_argument, 0, 'H'}, {"body-timeout-ms", required_argument, 0, 'B'},
        {"idle-timeout-ms", required_argument, 0, 'I'}, {"send-timeout-ms", required_argument, 0, 'S'},
        {"body-memory-max", required_argument, 0, 'm'}, {"max-header-bytes", required_argument, 0, 'x'},
        {"max-headers", required_argument, 0, 'n'},   {"max-url", required_argument, 0, 'U'},
        {"tmp-dir", required_argument, 0, 't'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': upload_max = strtoull(optarg, NULL, 10); break;
        case 'c': limits.max_connections = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'H': limits.header_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'B': limits.body_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'I': limits.idle_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'S': limits.send_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'm': limits.body_memory_max = strtoull(optarg, NULL, 10); break;
        case 'x': limits.max_header_bytes = strtoull(optarg, NULL, 10); break;
        case 'n': limits.max_headers = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'U': limits.max_url = strtoull(optarg, NULL, 10); break;
        case 't': limits.body_tmp_dir = optarg; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    lf_log_set_program("logferry-http-testserver");
    uv_loop_t *loop = uv_default_loop();
    int rc = lf_http_server_new(loop, &limits, &server);
    if (rc == 0)
        rc = lf_http_server_route(server, LF_HTTP_GET, "/small", 0, get_small, NULL, NULL);
    if (rc == 0)
        rc = lf_http_server_route(server, LF_HTTP_GET, "/healthz", 0, get_healthz, NULL, NULL);
    if (rc == 0)
        rc = lf_http_server_route(server, LF_HTTP_PUT, "/upload", upload_max, put_upload, NULL, NULL);
    if (rc == 0)
        rc = lf_http_server_listen(server, listen, port);
    if (rc != 0) {
        fprintf(stderr, "logferry-http-testserver: %s\n", uv_strerror(rc));
        return 1;
    }
    printf("%d\n", lf_http_server_port(server));
    fflush(stdout);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
