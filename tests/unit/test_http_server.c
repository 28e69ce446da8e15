/* lf_http_server: a real server on 127.0.0.1 (port 0) running its own loop in a thread, talked to
 * with raw blocking sockets, so that every byte on the wire is the test's choice. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_http_server.h"

/* ------------------------------------------------------------------ fixture: server in a thread */

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    lf_http_server *srv;
    int port;
    void (*fn)(struct fixture *, void *);
    void *arg;
    uv_sem_t done;
    bool drained;
    char tmpdir[64];
} fixture;

static fixture *F;

/* handler state, touched only on the loop thread (or through on_loop) */
static lf_http_request *held[8];
static int n_held;
static int hook_calls;

static void on_async(uv_async_t *a)
{
    fixture *f = a->data;
    if (f->fn) {
        f->fn(f, f->arg);
        f->fn = NULL;
        uv_sem_post(&f->done);
    }
}

static void on_loop(void (*fn)(fixture *, void *), void *arg)
{
    F->fn = fn;
    F->arg = arg;
    uv_async_send(&F->async);
    uv_sem_wait(&F->done);
}

static void *loop_thread(void *arg)
{
    fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void h_small(lf_http_request *req)
{
    lf_http_respond(req, 200, "text/plain", "small", 5, NULL);
}

static void h_item(lf_http_request *req)
{
    char out[300];
    int n = snprintf(out, sizeof out, "item:%s", req->params[0]);
    lf_http_respond(req, 200, "text/plain", out, (size_t)n, "X-Route: item\r\n");
}

static void h_special(lf_http_request *req)
{
    lf_http_respond(req, 200, "text/plain", "special", 7, NULL);
}

static void h_part(lf_http_request *req)
{
    char out[300];
    int n = snprintf(out, sizeof out, "%s/%s", req->params[0], req->params[1]);
    lf_http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
}

/* "len=N where=mem|file sum=S": the body as the handler sees it */
static void h_upload(lf_http_request *req)
{
    uint64_t sum = 0, len = 0;
    if (req->body.fd >= 0) {
        unsigned char buf[8192];
        ssize_t n;
        while ((n = read(req->body.fd, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                sum += buf[i];
            len += (uint64_t)n;
        }
    } else {
        for (uint64_t i = 0; i < req->body.len; i++)
            sum += (unsigned char)req->body.data[i];
        len = req->body.len;
    }
    char out[128];
    int n = snprintf(out, sizeof out, "len=%llu where=%s sum=%llu", (unsigned long long)len,
                     req->body.fd >= 0 ? "file" : "mem", (unsigned long long)sum);
    lf_http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
}

static void h_hold(lf_http_request *req)
{
    held[n_held++] = req; /* answered later by the test, from the loop */
}

static int hook_auth(lf_http_request *req)
{
    hook_calls++;
    if (!lf_http_request_header(req, "authorization")) {
        lf_http_respond_error(req, 401, "unauthorized", "no credentials", NULL);
        return 1;
    }
    return 0;
}

static void h_query(lf_http_request *req)
{
    char buf[64], out[128];
    int rc = lf_http_request_query_param(req, "q", buf, sizeof buf);
    if (rc >= 0)
        snprintf(out, sizeof out, "%s", buf);
    else if (rc == -ENOENT)
        snprintf(out, sizeof out, "(none)");
    else
        snprintf(out, sizeof out, "(q %s)", lf_http_query_problem(rc));
    lf_http_respond(req, 200, "text/plain", out, strlen(out), NULL);
}

#define FILE_LEN (300 * 1024)

static void h_file(lf_http_request *req)
{
    char path[128];
    snprintf(path, sizeof path, "%s/resp-XXXXXX", F->tmpdir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char buf[4096];
    for (int i = 0; i < FILE_LEN / 4096; i++) {
        memset(buf, 'a' + i % 26, sizeof buf);
        assert_int_equal(write(fd, buf, sizeof buf), sizeof buf);
    }
    lseek(fd, 0, SEEK_SET);
    lf_http_respond_fd(req, 200, "application/octet-stream", fd, FILE_LEN, NULL);
}

static int setup(void **state)
{
    F = calloc(1, sizeof *F);
    n_held = 0;
    hook_calls = 0;
    snprintf(F->tmpdir, sizeof F->tmpdir, "/tmp/lf-test-http-XXXXXX");
    assert_non_null(mkdtemp(F->tmpdir));
    assert_int_equal(uv_loop_init(&F->loop), 0);
    assert_int_equal(uv_async_init(&F->loop, &F->async, on_async), 0);
    F->async.data = F;
    assert_int_equal(uv_sem_init(&F->done, 0), 0);
    lf_http_server_limits l;
    lf_http_server_limits_default(&l);
    l.max_url = 1024;
    l.max_header_bytes = 4096;
    l.max_headers = 20;
    l.body_memory_max = 64 * 1024;
    l.max_connections = 8;
    l.header_timeout_ms = 400;
    l.body_timeout_ms = 400;
    l.idle_timeout_ms = 800;
    l.send_timeout_ms = 3000;
    l.body_tmp_dir = F->tmpdir;
    assert_int_equal(lf_http_server_new(&F->loop, &l, &F->srv), 0);
    lf_http_server *s = F->srv;
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/small", 0, h_small, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/items/{id}", 0, h_item, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/items/special", 0, h_special, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/items/{id}/parts/{part}", 0, h_part, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_PUT | LF_HTTP_POST, "/upload", 1024 * 1024, h_upload, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_PUT, "/tiny", 100, h_upload, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET | LF_HTTP_PUT, "/hold", 1024 * 1024, h_hold, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_PUT, "/auth", 1024 * 1024, h_upload, hook_auth, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/query", 0, h_query, NULL, NULL), 0);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/file", 0, h_file, NULL, NULL), 0);
    assert_int_equal(lf_http_server_listen(s, "127.0.0.1", 0), 0);
    F->port = lf_http_server_port(s);
    assert_true(F->port > 0);
    assert_int_equal(pthread_create(&F->thread, NULL, loop_thread, F), 0);
    return 0;
}

static void on_drained(lf_http_server *srv, void *arg)
{
    fixture *f = arg;
    f->drained = true;
}

static void do_drain(fixture *f, void *arg)
{
    if (f->srv)
        lf_http_server_drain(f->srv, on_drained, f);
}

static void close_async(uv_handle_t *h)
{
}

static void do_stop(fixture *f, void *arg)
{
    /* answer whatever is still held so that the drain can finish */
    for (int i = 0; i < n_held; i++)
        lf_http_respond(held[i], 200, "text/plain", "late", 4, NULL);
    n_held = 0;
}

static void do_free(fixture *f, void *arg)
{
    if (f->srv)
        lf_http_server_free(f->srv);
    f->srv = NULL;
    uv_close((uv_handle_t *)&f->async, close_async);
}

static int teardown(void **state)
{
    on_loop(do_stop, NULL);
    on_loop(do_drain, NULL);
    for (int i = 0; i < 500 && !F->drained; i++)
        usleep(10000);
    assert_true(F->drained);
    on_loop(do_free, NULL); /* closes the last handle: the loop thread returns */
    pthread_join(F->thread, NULL);
    assert_int_equal(uv_loop_close(&F->loop), 0);
    uv_sem_destroy(&F->done);
    /* every spilled body was an unlinked file: nothing may be left in the directory */
    DIR *d = opendir(F->tmpdir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL)
        files += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    rmdir(F->tmpdir);
    free(F);
    return 0;
}

/* ------------------------------------------------------------------ client helpers */

static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

typedef struct response {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
    bool closes; /* Connection: close */
} response;

/* Reads one response (Content-Length framed). is_head: the response to a HEAD has no body.
 * Returns 0, or -1 when the connection closed before a full response. */
static int read_response_ex(int fd, response *r, bool is_head)
{
    memset(r, 0, sizeof *r);
    size_t hl = 0;
    while (hl < 4 || memcmp(r->head + hl - 4, "\r\n\r\n", 4) != 0) {
        if (hl + 1 >= sizeof r->head)
            return -1;
        ssize_t n = recv(fd, r->head + hl, 1, 0);
        if (n <= 0)
            return -1;
        hl++;
    }
    r->head[hl] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    r->closes = strstr(r->head, "Connection: close\r\n") != NULL;
    const char *cl = strstr(r->head, "Content-Length: ");
    size_t len = cl ? strtoul(cl + 16, NULL, 10) : 0;
    if (is_head || r->status == 100)
        len = 0;
    r->body = calloc(1, len + 1);
    while (r->body_len < len) {
        ssize_t n = recv(fd, r->body + r->body_len, len - r->body_len, 0);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
    }
    return 0;
}

static int read_response(int fd, response *r)
{
    return read_response_ex(fd, r, false);
}

static void response_free(response *r)
{
    free(r->body);
    r->body = NULL;
}

/* true when the server closed the connection (EOF or reset) within the receive timeout */
static bool closed_by_server(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}

static void expect(int fd, const char *request, int status, const char *body)
{
    send_str(fd, request);
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, status);
    if (body)
        assert_string_equal(r.body, body);
    response_free(&r);
}

static void get_stats(fixture *f, void *arg)
{
    lf_http_server_get_stats(f->srv, arg);
}

static void count_held(fixture *f, void *arg)
{
    *(int *)arg = n_held;
}

static void wait_held(int n)
{
    int have = 0;
    for (int i = 0; i < 300; i++) {
        on_loop(count_held, &have);
        if (have >= n)
            return;
        usleep(10000);
    }
    fail_msg("handler not called (%d of %d held)", have, n);
}

/* ------------------------------------------------------------------ tests */

static void keep_alive_and_routing(void **state)
{
    int fd = client();
    expect(fd, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    expect(fd, "GET /items/42 HTTP/1.1\r\nHost: t\r\n\r\n", 200, "item:42");
    expect(fd, "GET /items/special HTTP/1.1\r\nHost: t\r\n\r\n", 200, "special"); /* exact wins */
    expect(fd, "GET /items/a%20b/parts/x%2Fy HTTP/1.1\r\nHost: t\r\n\r\n", 200, "a b/x/y");
    expect(fd, "GET /query?a=1&q=hello+world%21 HTTP/1.1\r\nHost: t\r\n\r\n", 200, "hello world!");
    expect(fd, "GET /query?qq=1 HTTP/1.1\r\nHost: t\r\n\r\n", 200, "(none)");
    /* a value is read whole or refused, never taken as absent */
    expect(fd, "GET /query?%71=encoded+key HTTP/1.1\r\nHost: t\r\n\r\n", 200, "encoded key");
    expect(fd, "GET /query?q=%zz HTTP/1.1\r\nHost: t\r\n\r\n", 200,
           "(q is not valid percent-encoding (or holds a NUL byte))");
    expect(fd, "GET /query?q=a%00 HTTP/1.1\r\nHost: t\r\n\r\n", 200,
           "(q is not valid percent-encoding (or holds a NUL byte))");
    expect(fd, "GET /query?q=a&x=1&q=b HTTP/1.1\r\nHost: t\r\n\r\n", 200, "(q is given more than once)");
    expect(fd,
           "GET /query?q=0123456789012345678901234567890123456789012345678901234567890123 HTTP/1.1\r\nHost: t\r\n\r\n",
           200, "(q is too long)");
    /* 63 bytes once decoded fit, although 189 bytes were sent */
    char longq[512];
    strcpy(longq, "GET /query?q=");
    for (int i = 0; i < 63; i++)
        strcat(longq, "%41");
    strcat(longq, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect(fd, longq, 200, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    /* 404 and 405 keep the connection */
    expect(fd, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, NULL);
    expect(fd, "GET /items HTTP/1.1\r\nHost: t\r\n\r\n", 404, NULL);
    expect(fd, "GET /items/ HTTP/1.1\r\nHost: t\r\n\r\n", 404, NULL); /* {id} needs a non-empty segment */
    send_str(fd, "DELETE /small HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD\r\n"));
    assert_non_null(strstr(r.body, "\"error\":\"method_not_allowed\""));
    response_free(&r);
    /* HEAD: headers of the GET, no body; the next response must still parse */
    send_str(fd, "HEAD /items/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response_ex(fd, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Length: 6\r\n"));
    assert_non_null(strstr(r.head, "X-Route: item\r\n"));
    response_free(&r);
    expect(fd, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    /* HTTP/1.0 without keep-alive: answered, then closed */
    send_str(fd, "GET /small HTTP/1.0\r\n\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.closes);
    response_free(&r);
    assert_true(closed_by_server(fd));
    close(fd);

    lf_http_server_stats st;
    on_loop(get_stats, &st);
    assert_int_equal(st.connections_accepted, 1);
    assert_int_equal(st.requests, 19); /* six more query cases */
    assert_int_equal(st.responses_2xx, 15);
    assert_int_equal(st.responses_4xx, 4);
}

static void pipelining_in_order(void **state)
{
    int fd = client();
    /* several requests in one segment, one of them a PUT with a body, and a HEAD */
    send_str(fd, "GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /items/special HTTP/1.1\r\nHost: t\r\n\r\n"
                 "HEAD /small HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/2/parts/3 HTTP/1.1\r\nHost: t\r\n\r\n");
    const char *want[] = {"item:1", "len=3 where=mem sum=294", "special", "", NULL, "2/3"};
    int status[] = {200, 200, 200, 200, 404, 200};
    for (int i = 0; i < 6; i++) {
        response r;
        assert_int_equal(read_response_ex(fd, &r, i == 3), 0);
        assert_int_equal(r.status, status[i]);
        if (want[i])
            assert_string_equal(r.body, want[i]);
        response_free(&r);
    }
    /* a request split at every byte */
    const char *req = "GET /items/99 HTTP/1.1\r\nHost: t\r\n\r\n";
    for (size_t i = 0; i < strlen(req); i++) {
        send_all(fd, req + i, 1);
        usleep(1000);
    }
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_string_equal(r.body, "item:99");
    response_free(&r);
    /* a chunked body split at every byte: the chunk CRLF checks work across reads */
    req = "PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\n\r\n";
    for (size_t i = 0; i < strlen(req); i++) {
        send_all(fd, req + i, 1);
        usleep(1000);
    }
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=5 where=mem sum=495");
    response_free(&r);
    close(fd);
}

static void bodies_memory_and_temp_file(void **state)
{
    int fd = client();
    /* small: memory */
    char *big = malloc(300 * 1024);
    uint64_t sum = 0;
    for (int i = 0; i < 300 * 1024; i++) {
        big[i] = (char)('a' + i % 23);
        sum += (unsigned char)big[i];
    }
    char hdr[200], want[100];
    snprintf(hdr, sizeof hdr, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", 300 * 1024);
    send_str(fd, hdr);
    send_all(fd, big, 300 * 1024);
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    snprintf(want, sizeof want, "len=%d where=file sum=%llu", 300 * 1024, (unsigned long long)sum);
    assert_string_equal(r.body, want);
    response_free(&r);
    /* chunked, spills once past 64 KiB */
    send_str(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    uint64_t csum = 0;
    size_t sent = 0;
    for (int i = 0; i < 20; i++) {
        char line[32];
        size_t n = 5000 + (size_t)i;
        snprintf(line, sizeof line, "%zx\r\n", n);
        send_str(fd, line);
        send_all(fd, big + sent, n);
        send_str(fd, "\r\n");
        for (size_t k = 0; k < n; k++)
            csum += (unsigned char)big[sent + k];
        sent += n;
    }
    send_str(fd, "0\r\nX-Trailer: yes\r\n\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    snprintf(want, sizeof want, "len=%zu where=file sum=%llu", sent, (unsigned long long)csum);
    assert_string_equal(r.body, want);
    response_free(&r);
    /* chunked, small: memory */
    expect(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n",
           200, "len=3 where=mem sum=294");
    /* empty body */
    expect(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 200, "len=0 where=mem sum=0");
    free(big);
    close(fd);
}

static void body_limits(void **state)
{
    /* 413 from Content-Length, before the body is read, then closed */
    int fd = client();
    send_str(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n");
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 413);
    assert_true(r.closes);
    assert_non_null(strstr(r.body, "\"error\":\"body_too_large\""));
    response_free(&r);
    assert_true(closed_by_server(fd));
    close(fd);

    /* 413 mid-stream for chunked */
    fd = client();
    send_str(fd, "PUT /tiny HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n");
    char x[64];
    memset(x, 'x', sizeof x);
    send_all(fd, x, 64);
    send_str(fd, "\r\n40\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 413);
    response_free(&r);
    assert_true(closed_by_server(fd));
    close(fd);

    /* 411: a PUT without length on a route that takes a body */
    fd = client();
    send_str(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 411);
    response_free(&r);
    close(fd);

    /* a body to a route without one: 413 */
    fd = client();
    send_str(fd, "GET /small HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 413);
    response_free(&r);
    close(fd);

    /* the headers hook refuses before the body is read */
    fd = client();
    send_str(fd, "PUT /auth HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\n\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 401);
    assert_true(r.closes);
    response_free(&r);
    close(fd);
    fd = client();
    expect(fd, "PUT /auth HTTP/1.1\r\nHost: t\r\nAuthorization: x\r\nContent-Length: 1\r\n\r\na", 200,
           "len=1 where=mem sum=97");
    close(fd);
}

static void expect_continue(void **state)
{
    int fd = client();
    send_str(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 100);
    response_free(&r);
    send_str(fd, "abcd");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=4 where=mem sum=394");
    response_free(&r);
    /* too large: the final error instead of 100 */
    send_str(fd, "PUT /tiny HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 413);
    response_free(&r);
    close(fd);
}

static void header_limits(void **state)
{
    char buf[8192];
    /* 414 */
    int fd = client();
    memset(buf, 0, sizeof buf);
    strcpy(buf, "GET /");
    memset(buf + 5, 'a', 2000);
    strcat(buf, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect(fd, buf, 414, NULL);
    assert_true(closed_by_server(fd));
    close(fd);
    /* 431: too many */
    fd = client();
    strcpy(buf, "GET /small HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 30; i++)
        sprintf(buf + strlen(buf), "X-%d: v\r\n", i);
    strcat(buf, "\r\n");
    expect(fd, buf, 431, NULL);
    assert_true(closed_by_server(fd));
    close(fd);
    /* 431: too large */
    fd = client();
    strcpy(buf, "GET /small HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(buf + strlen(buf), 'v', 5000);
    buf[37 + 5000] = '\0';
    strcat(buf, "\r\n\r\n");
    expect(fd, buf, 431, NULL);
    close(fd);
}

static void bad_requests(void **state)
{
    static const struct {
        const char *req;
        int status;
    } bad[] = {
        {"GE T /small HTTP/1.1\r\nHost: t\r\n\r\n", 400},                 /* malformed request line */
        {"GET /small HTTP/7.1\r\nHost: t\r\n\r\n", 400},                  /* version */
        {"GET /small HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400}, /* header name */
        {"GET /small HTTP/1.1\r\nHost: t\r\nX: a\x01z\r\n\r\n", 400},     /* header value */
        {"GET /small HTTP/1.1\r\n\r\n", 400},                             /* no Host */
        {"GET /sm%zzall HTTP/1.1\r\nHost: t\r\n\r\n", 400},               /* bad escape */
        {"GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n", 400},                  /* encoded NUL */
        {"GET http://x/small HTTP/1.1\r\nHost: t\r\n\r\n", 400},          /* absolute form */
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400}, /* chunk size */
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n-1\r\n", 400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX0\r\n\r\n", 400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400},
        /* only exactly "chunked" passes (RFC 9112 6.1): another coding is not implemented, and
         * chunked applied twice is malformed */
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br , Chunked\r\n\r\n0\r\n\r\n", 501},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n",
         400},
        {"PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         501},
    };
    size_t n4 = 0, n5 = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = client();
        send_str(fd, bad[i].req);
        response r;
        if (read_response(fd, &r) != 0)
            fail_msg("no response to bad request %zu", i);
        if (r.status != bad[i].status) {
            response_free(&r);
            fail_msg("bad request %zu answered %d, not %d", i, r.status, bad[i].status);
        }
        n4 += r.status < 500;
        n5 += r.status >= 500;
        assert_true(r.closes);
        response_free(&r);
        assert_true(closed_by_server(fd));
        close(fd);
    }
    /* the server is fine afterwards, and exactly "chunked" (any case) still passes */
    int fd = client();
    expect(fd, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    expect(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:  Chunked \r\n\r\n2\r\nab\r\n0\r\n\r\n", 200,
           NULL);
    close(fd);
    lf_http_server_stats st;
    on_loop(get_stats, &st);
    assert_int_equal(st.responses_4xx, n4);
    assert_int_equal(st.responses_5xx, n5);
}

static void timeouts(void **state)
{
    /* header timeout: a slow client gets 408 */
    int fd = client();
    send_str(fd, "GET /small HTTP/1.1\r\nHo");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.status, 408);
    response_free(&r);
    assert_true(closed_by_server(fd));
    close(fd);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 300 && ms < 2000);

    /* dribbling bytes does not extend the header deadline */
    fd = client();
    const char *slow = "GET /small HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < strlen(slow); i++) {
        if (send(fd, slow + i, 1, MSG_NOSIGNAL) != 1)
            break;
        usleep(50000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6 > 700)
            break;
    }
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 408);
    response_free(&r);
    close(fd);

    /* body timeout */
    fd = client();
    send_str(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 408);
    response_free(&r);
    close(fd);

    /* idle keep-alive: closed silently */
    fd = client();
    expect(fd, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 600 && ms < 3000);
    close(fd);

    lf_http_server_stats st;
    on_loop(get_stats, &st);
    assert_int_equal(st.timeouts, 3);
}

static void connection_cap(void **state)
{
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = client();
        expect(fds[i], "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    }
    int extra = client();
    send_str(extra, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    assert_int_equal(read_response(extra, &r), 0);
    assert_int_equal(r.status, 503);
    assert_true(r.closes);
    response_free(&r);
    assert_true(closed_by_server(extra));
    close(extra);
    /* one leaves: a new one is served */
    close(fds[0]);
    usleep(50000);
    fds[0] = client();
    expect(fds[0], "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    lf_http_server_stats st;
    on_loop(get_stats, &st);
    assert_int_equal(st.connections_rejected, 1);
    assert_int_equal(st.responses_5xx, 1);
}

static int respond_rc;

static void respond_held(fixture *f, void *arg)
{
    respond_rc = lf_http_respond(held[--n_held], 200, "text/plain", "later", 5, NULL);
}

static void async_handlers(void **state)
{
    /* answered later, client waiting; pipelined requests wait their turn */
    int fd = client();
    send_str(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /small HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_held(1);
    on_loop(respond_held, NULL);
    assert_int_equal(respond_rc, 0);
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_string_equal(r.body, "later");
    response_free(&r);
    assert_int_equal(read_response(fd, &r), 0);
    assert_string_equal(r.body, "small");
    response_free(&r);
    close(fd);

    /* the client goes away first, with a body spilled to a file: the request stays valid until the
     * respond call, which discards the response and frees it (ASan checks the rest) */
    fd = client();
    char hdr[128];
    snprintf(hdr, sizeof hdr, "PUT /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    send_str(fd, hdr);
    static char body[100000];
    memset(body, 'q', sizeof body);
    send_all(fd, body, sizeof body);
    wait_held(1);
    close(fd);
    lf_http_server_stats st;
    for (int i = 0; i < 200; i++) {
        on_loop(get_stats, &st);
        if (st.connections_open == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(st.connections_open, 0);
    on_loop(respond_held, NULL);
    assert_int_equal(respond_rc, LF_ECLOSED);
}

static void response_from_file_and_slow_reader(void **state)
{
    int fd = client();
    send_str(fd, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    assert_int_equal(read_response(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, FILE_LEN);
    assert_int_equal(r.body[0], 'a');
    assert_int_equal(r.body[FILE_LEN - 1], 'a' + (FILE_LEN / 4096 - 1) % 26);
    response_free(&r);
    close(fd);

    /* a client that pipelines 40 big responses and reads none: the server must not queue them all */
    fd = client();
    lf_http_server_stats before, after;
    on_loop(get_stats, &before);
    char reqs[40 * 40];
    reqs[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(reqs, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(fd, reqs);
    usleep(500000);
    on_loop(get_stats, &after);
    uint64_t queued = after.bytes_out - before.bytes_out;
    uint64_t started = after.requests - before.requests;
    print_message("slow reader: %llu bytes written for %llu requests started\n", (unsigned long long)queued,
                  (unsigned long long)started);
    /* the server stopped taking requests once the client stopped reading: what it wrote is what
     * the kernel's socket buffers took, plus at most one piece in flight */
    assert_true(started < 20);
    assert_true(queued < 20 * FILE_LEN);
    /* nothing was dropped: reading now gets all 40, in order */
    for (int i = 0; i < 40; i++) {
        if (read_response(fd, &r) != 0)
            fail_msg("response %d: %s", i, strerror(errno));
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, FILE_LEN);
        response_free(&r);
    }
    close(fd);
}

static void drain_finishes_in_flight(void **state)
{
    int idle = client();
    expect(idle, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    int busy = client();
    send_str(busy, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_held(1);
    on_loop(do_drain, NULL);
    /* the idle connection is closed at once, new connections are refused */
    assert_true(closed_by_server(idle));
    close(idle);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(connect(fd, (struct sockaddr *)&a, sizeof a) != 0);
    close(fd);
    assert_false(F->drained);
    /* the request in flight completes, with Connection: close */
    on_loop(respond_held, NULL);
    response r;
    assert_int_equal(read_response(busy, &r), 0);
    assert_string_equal(r.body, "later");
    assert_true(r.closes);
    response_free(&r);
    assert_true(closed_by_server(busy));
    close(busy);
    for (int i = 0; i < 300 && !F->drained; i++)
        usleep(10000);
    assert_true(F->drained);
}

static void free_now(fixture *f, void *arg)
{
    lf_http_server_free(f->srv); /* without a drain: handles close as the loop runs on */
    f->srv = NULL;
}

static void free_with_open_connections(void **state)
{
    /* a plain keep-alive connection, a half-sent request and a request held by its handler */
    int a = client();
    expect(a, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", 200, "small");
    int b = client();
    send_str(b, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc");
    int c = client();
    send_str(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_held(1);
    on_loop(free_now, NULL);
    assert_true(closed_by_server(a));
    assert_true(closed_by_server(b));
    assert_true(closed_by_server(c));
    close(a);
    close(b);
    close(c);
    /* the held request outlives the server; answering it frees it */
    on_loop(respond_held, NULL);
    assert_int_equal(respond_rc, LF_ECLOSED);
    F->drained = true; /* nothing left to drain */
}

/* One request with every allocation (then every spill write) failing in turn: the server answers or
 * closes, never crashes or leaks (ASan), and serves the next client normally. */
static void allocation_and_write_failures(void **state)
{
    static char body[100000];
    memset(body, 'f', sizeof body);
    int answered = 0, closed = 0;
    for (int kind = 0; kind < 2; kind++) {
        for (uint64_t nth = 1; nth <= (kind == 0 ? 40u : 3u); nth++) {
            int fd = client();
            lf_fail_arm(kind == 0 ? LF_FAIL_ALLOC : LF_FAIL_WRITE, nth, false);
            send_str(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
            send(fd, body, sizeof body, MSG_NOSIGNAL); /* may be cut short by a close */
            response r;
            if (read_response(fd, &r) == 0) {
                answered++;
                assert_true(r.status == 200 || r.status == 500 || r.status == 503);
                response_free(&r);
            } else {
                closed++;
            }
            close(fd);
            lf_fail_disarm(kind == 0 ? LF_FAIL_ALLOC : LF_FAIL_WRITE);
            fd = client();
            expect(fd, "GET /items/ok HTTP/1.1\r\nHost: t\r\n\r\n", 200, "item:ok");
            close(fd);
        }
    }
    print_message("failure injection: %d answered, %d closed\n", answered, closed);
}

static void route_registration(void **state)
{
    lf_http_server *s = F->srv;
    /* checked on the test thread: registration does not touch the loop */
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/items/{x}", 0, h_small, NULL, NULL), -EEXIST);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "no-slash", 0, h_small, NULL, NULL), -EINVAL);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/a//b", 0, h_small, NULL, NULL), -EINVAL);
    assert_int_equal(lf_http_server_route(s, LF_HTTP_GET, "/a/{}", 0, h_small, NULL, NULL), -EINVAL);
    assert_int_equal(lf_http_server_route(s, 0, "/z", 0, h_small, NULL, NULL), -EINVAL);
    assert_string_equal(lf_http_status_text(413), "Content Too Large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(route_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_alive_and_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(pipelining_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(bodies_memory_and_temp_file, setup, teardown),
        cmocka_unit_test_setup_teardown(body_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(header_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(async_handlers, setup, teardown),
        cmocka_unit_test_setup_teardown(response_from_file_and_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_finishes_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_and_write_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
