/* lf_http_client against servers this test runs itself on 127.0.0.1: a plain-socket HTTP/1.1 server
 * in threads that can misbehave on request (429/503 with Retry-After, hang, close mid-body, huge or
 * slow bodies), a tiny forwarding HTTP proxy that counts what it forwards, and, when the openssl
 * command is installed, `openssl s_server` with a self-signed certificate for TLS verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_http_client.h"

/* ---------------------------------------------------------------- test HTTP server ---- */

#define MAX_WORKERS 128

typedef struct srv {
    int lfd;
    int port;
    pthread_t accept_thr;
    atomic_bool stop;
    atomic_int conns;    /* connections accepted */
    atomic_int requests; /* requests read */
    atomic_int flaky;    /* requests seen on /flaky/ paths */
    pthread_mutex_t mu;
    pthread_t workers[MAX_WORKERS];
    int nworkers;
} srv;

typedef struct conn {
    srv *s;
    int fd;
} conn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Waits until fd is readable; 1 ready, 0 when stop was asked or timeout_ms passed. */
static int wait_readable(srv *s, int fd, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    while (!atomic_load(&s->stop) && now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 50);
        if (n > 0)
            return 1;
    }
    return 0;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sendf(int fd, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return send_all(fd, buf, (size_t)n);
}

static void respond(int fd, int status, const char *extra_headers, const char *body, bool close_conn)
{
    sendf(fd, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n%s%s\r\n%s",
          status, strlen(body), extra_headers ? extra_headers : "",
          close_conn ? "Connection: close\r\n" : "", body);
}

static const char *find_header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static void *conn_main(void *arg)
{
    conn *cn = arg;
    srv *s = cn->s;
    int fd = cn->fd;
    free(cn);
    char head[16384];
    size_t have = 0;
    for (;;) {
        /* Read one request head. */
        char *end = NULL;
        while (!(end = memmem(head, have, "\r\n\r\n", 4))) {
            if (have == sizeof(head) - 1 || !wait_readable(s, fd, 10000))
                goto out;
            ssize_t r = recv(fd, head + have, sizeof(head) - 1 - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t head_len = (size_t)(end - head) + 4;
        char saved = head[head_len - 1];
        head[head_len - 1] = '\0';
        char method[16] = "", path[512] = "", val[256];
        sscanf(head, "%15s %511s", method, path);
        size_t clen = find_header(head, "Content-Length", val, sizeof(val)) ? strtoul(val, NULL, 10) : 0;
        bool close_conn = find_header(head, "Connection", val, sizeof(val)) && strcasecmp(val, "close") == 0;
        char xtest[256] = "", auth[256] = "";
        find_header(head, "X-Test", xtest, sizeof(xtest));
        find_header(head, "Authorization", auth, sizeof(auth));
        head[head_len - 1] = saved;
        atomic_fetch_add(&s->requests, 1);

        /* Read the body, summing it. */
        size_t got = have - head_len, total = 0;
        uint32_t sum = 0;
        for (size_t i = 0; i < got && i < clen; i++)
            sum = sum * 31 + (unsigned char)head[head_len + i];
        total = got < clen ? got : clen;
        size_t leftover = got > clen ? got - clen : 0;
        memmove(head, head + head_len + total, leftover);
        have = leftover;
        while (total < clen) {
            char buf[65536];
            if (!wait_readable(s, fd, 10000))
                goto out;
            size_t want = clen - total < sizeof(buf) ? clen - total : sizeof(buf);
            ssize_t r = recv(fd, buf, want, 0);
            if (r <= 0)
                goto out;
            for (ssize_t i = 0; i < r; i++)
                sum = sum * 31 + (unsigned char)buf[i];
            total += (size_t)r;
        }
        char echo[128];
        snprintf(echo, sizeof(echo), "%s len=%zu sum=%u", method, total, sum);

        int n1 = 0, n2 = 0;
        char ra[64] = "";
        if (strcmp(path, "/ok") == 0) {
            respond(fd, 200, NULL, "hello", close_conn);
        } else if (strcmp(path, "/echo") == 0) {
            respond(fd, 200, NULL, echo, close_conn);
        } else if (strcmp(path, "/headers") == 0) {
            char h[512];
            snprintf(h, sizeof(h), "X-Custom:   spaced value  \r\nX-Echo: %s\r\nX-Auth-Echo: %s\r\n", xtest,
                     auth[0] ? auth : "none");
            sendf(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: 2\r\n\r\n{}", h);
        } else if (sscanf(path, "/status/%d", &n1) == 1) {
            respond(fd, n1, NULL, "status", close_conn);
        } else if (sscanf(path, "/flaky/%d/%d/%63s", &n1, &n2, ra) >= 2) {
            /* The first n1 requests get status n2 with Retry-After ra ("dateN": an HTTP-date N s
             * ahead, "-": none); later ones get 200 and the echo. */
            if (atomic_fetch_add(&s->flaky, 1) < n1) {
                char h[128] = "";
                int secs;
                if (sscanf(ra, "date%d", &secs) == 1) {
                    time_t t = time(NULL) + secs;
                    struct tm tm;
                    gmtime_r(&t, &tm);
                    strftime(h, sizeof(h), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
                } else if (ra[0] && strcmp(ra, "-") != 0) {
                    snprintf(h, sizeof(h), "Retry-After: %s\r\n", ra);
                }
                respond(fd, n2, h, "busy", close_conn);
            } else {
                respond(fd, 200, NULL, echo, close_conn);
            }
        } else if (strcmp(path, "/hang") == 0) {
            /* Never answer; wait until the client gives up (EOF) or the server stops. */
            while (wait_readable(s, fd, 10000)) {
                char b[256];
                if (recv(fd, b, sizeof(b), 0) <= 0)
                    break;
            }
            goto out;
        } else if (strcmp(path, "/close-mid-body") == 0) {
            sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            char b[100];
            memset(b, 'x', sizeof(b));
            send_all(fd, b, sizeof(b));
            goto out;
        } else if (sscanf(path, "/big/%d", &n1) == 1 || strcmp(path, "/huge") == 0 ||
                   strcmp(path, "/huge-chunked") == 0) {
            bool chunked = strcmp(path, "/huge-chunked") == 0;
            size_t size = path[1] == 'b' ? (size_t)n1 : (size_t)64 << 20;
            if (chunked)
                sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            else
                sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n", size,
                      close_conn ? "Connection: close\r\n" : "");
            char b[16384];
            for (size_t off = 0; off < size && !atomic_load(&s->stop);) {
                size_t n = size - off < sizeof(b) ? size - off : sizeof(b);
                for (size_t i = 0; i < n; i++)
                    b[i] = (char)('a' + (off + i) % 26);
                if (chunked && sendf(fd, "%zx\r\n", n) != 0)
                    goto out;
                if (send_all(fd, b, n) != 0 || (chunked && send_all(fd, "\r\n", 2) != 0))
                    goto out;
                off += n;
            }
            if (chunked)
                send_all(fd, "0\r\n\r\n", 5);
        } else if (strcmp(path, "/slow") == 0) {
            /* 1000 announced bytes trickled one per 200 ms: far under any sane low-speed limit. */
            sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for (int i = 0; i < 1000 && !atomic_load(&s->stop); i++) {
                if (send_all(fd, "s", 1) != 0)
                    goto out;
                usleep(200000);
            }
        } else {
            respond(fd, 404, NULL, "no such path", close_conn);
        }
        if (close_conn)
            goto out;
    }
out:
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->conns, 1);
        conn *cn = malloc(sizeof(*cn));
        cn->s = s;
        cn->fd = fd;
        pthread_mutex_lock(&s->mu);
        if (s->nworkers < MAX_WORKERS &&
            pthread_create(&s->workers[s->nworkers], NULL, conn_main, cn) == 0) {
            s->nworkers++;
        } else {
            close(fd);
            free(cn);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static srv *srv_start(void)
{
    srv *s = calloc(1, sizeof(*s));
    s->lfd = listen_any(&s->port);
    assert_true(s->lfd >= 0);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->accept_thr, NULL, accept_main, s), 0);
    return s;
}

static void srv_stop(srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->accept_thr, NULL);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void url(char *out, size_t n, const srv *s, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", s->port, path);
}

/* ---------------------------------------------------------------- test proxy ---- */

/* A forwarding (CONNECT-less) HTTP proxy: absolute-form request in, origin-form request out with
 * Connection: close, the answer relayed until the origin closes. One connection at a time. */
typedef struct proxy {
    int lfd, port;
    pthread_t thr;
    atomic_bool stop;
    atomic_int forwarded;
} proxy;

static void proxy_handle(proxy *px, int cfd)
{
    srv tmp = {0}; /* for wait_readable's stop flag */
    char head[16384];
    size_t have = 0;
    char *end;
    while (!(end = memmem(head, have, "\r\n\r\n", 4))) {
        if (have == sizeof(head) - 1 || !wait_readable(&tmp, cfd, 5000))
            return;
        ssize_t r = recv(cfd, head + have, sizeof(head) - 1 - have, 0);
        if (r <= 0)
            return;
        have += (size_t)r;
    }
    size_t head_len = (size_t)(end - head) + 4;
    char method[16], target[1024], version[16];
    if (sscanf(head, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(target, "http://", 7) != 0)
        return;
    char *hostport = target + 7;
    char *path = strchr(hostport, '/');
    char pathbuf[1024] = "/";
    if (path) {
        snprintf(pathbuf, sizeof(pathbuf), "%s", path);
        *path = '\0';
    }
    char *colon = strchr(hostport, ':');
    int port = colon ? atoi(colon + 1) : 80;
    if (colon)
        *colon = '\0';
    if (strcmp(hostport, "127.0.0.1") != 0)
        return; /* loopback only */
    int ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(ufd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        sendf(cfd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        close(ufd);
        return;
    }
    atomic_fetch_add(&px->forwarded, 1);
    sendf(ufd, "%s %s %s\r\n", method, pathbuf, version);
    /* Copy the header lines except the hop-by-hop ones, then close the hop explicitly. */
    char *line = strstr(head, "\r\n") + 2;
    while (line < head + head_len - 2) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, "Proxy-Connection:", 17) != 0 && strncasecmp(line, "Connection:", 11) != 0)
            send_all(ufd, line, (size_t)(eol - line) + 2);
        line = eol + 2;
    }
    sendf(ufd, "Connection: close\r\n\r\n");
    send_all(ufd, head + head_len, have - head_len);
    /* Relay both ways until the origin closes. */
    for (;;) {
        struct pollfd p[2] = {{.fd = cfd, .events = POLLIN}, {.fd = ufd, .events = POLLIN}};
        if (poll(p, 2, 5000) <= 0)
            break;
        char buf[65536];
        if (p[0].revents) {
            ssize_t r = recv(cfd, buf, sizeof(buf), 0);
            if (r <= 0)
                break;
            send_all(ufd, buf, (size_t)r);
        }
        if (p[1].revents) {
            ssize_t r = recv(ufd, buf, sizeof(buf), 0);
            if (r <= 0)
                break;
            send_all(cfd, buf, (size_t)r);
        }
    }
    close(ufd);
}

static void *proxy_main(void *arg)
{
    proxy *px = arg;
    while (!atomic_load(&px->stop)) {
        struct pollfd p = {.fd = px->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        proxy_handle(px, fd);
        close(fd);
    }
    return NULL;
}

/* ---------------------------------------------------------------- fixtures ---- */

static int setup(void **state)
{
    *state = srv_start();
    return 0;
}

static int teardown(void **state)
{
    srv_stop(*state);
    return 0;
}

static lf_http_client_opts fast_opts(void)
{
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.backoff_base_ms = 20;
    o.backoff_max_ms = 100;
    o.timeout_ms = 10000;
    o.proxy = ""; /* the tests talk to 127.0.0.1 directly whatever the environment says */
    return o;
}

static lf_http_client *blocking_client(const lf_http_client_opts *o)
{
    lf_http_client *c = NULL;
    assert_int_equal(lf_http_client_new(NULL, o, &c), 0);
    return c;
}

static int fetch(lf_http_client *c, const srv *s, const char *method, const char *path,
                 lf_http_response *r)
{
    char u[256];
    url(u, sizeof(u), s, path);
    lf_http_client_request req = {.method = method, .url = u};
    return lf_http_client_fetch(c, &req, r);
}

/* ---------------------------------------------------------------- pure functions ---- */

static void test_parse_retry_after(void **state)
{
    (void)state;
    assert_int_equal(lf_http_parse_retry_after("5", 1000), 5000);
    assert_int_equal(lf_http_parse_retry_after(" 0 ", 1000), 0);
    assert_int_equal(lf_http_parse_retry_after("5x", 1000), -EINVAL);
    assert_int_equal(lf_http_parse_retry_after("soon", 1000), -EINVAL);
    assert_int_equal(lf_http_parse_retry_after("99999999999999999999", 1000), -EINVAL);
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 (RFC 9110's example date). */
    assert_int_equal(lf_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000);
    assert_int_equal(lf_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111999), 0);
}

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.backoff_base_ms = 100;
    o.backoff_max_ms = 1000;
    o.max_retry_after_ms = 5000;
    int64_t maxseen[6] = {0};
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (int retry = 1; retry <= 5; retry++) {
            int64_t d = lf_http_backoff_ms(&o, retry, -1, x);
            int64_t cap = retry >= 5 ? 1000 : 100LL << (retry - 1);
            assert_true(d >= 0 && d <= cap);
            if (d > maxseen[retry])
                maxseen[retry] = d;
        }
    }
    /* Full jitter spreads over the whole window: the maxima approach the caps. */
    assert_true(maxseen[1] >= 95 && maxseen[4] >= 760 && maxseen[5] >= 950);
    assert_int_equal(lf_http_backoff_ms(&o, 1, 3000, 0), 3000); /* Retry-After is a floor */
    assert_int_equal(lf_http_backoff_ms(&o, 1, 6000, 0), -1);   /* past max_retry_after_ms */
}

static void test_retry_policy_defaults(void **state)
{
    (void)state;
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    int yes[] = {408, 429, 500, 502, 503, 504};
    int no[] = {200, 201, 301, 400, 401, 403, 404, 409, 413, 422, 501};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(lf_http_status_retryable(&o, yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(lf_http_status_retryable(&o, no[i]));
    assert_true(lf_http_error_retryable(&o, -ECONNREFUSED));
    assert_true(lf_http_error_retryable(&o, -ETIMEDOUT));
    assert_true(lf_http_error_retryable(&o, -ECONNRESET));
    assert_false(lf_http_error_retryable(&o, LF_ELIMIT));
    assert_false(lf_http_error_retryable(&o, LF_EAUTH));
    assert_false(lf_http_error_retryable(&o, -ENOENT));
    o.no_retry_transport = true;
    assert_false(lf_http_error_retryable(&o, -ECONNREFUSED));
    int custom[LF_HTTP_MAX_RETRY_STATUSES] = {409, 0};
    memcpy(o.retry_statuses, custom, sizeof(custom));
    assert_true(lf_http_status_retryable(&o, 409));
    assert_false(lf_http_status_retryable(&o, 503));
}

/* ---------------------------------------------------------------- blocking client ---- */

static void test_keepalive_and_headers(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    for (int i = 0; i < 5; i++) {
        lf_http_response r;
        assert_int_equal(fetch(c, s, NULL, "/ok", &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.attempts, 1);
        assert_string_equal(lf_buf_cstr(&r.body), "hello");
        assert_string_equal(lf_http_response_header(&r, "content-type"), "text/plain");
        lf_http_response_free(&r);
    }
    assert_int_equal(atomic_load(&s->conns), 1); /* one connection, reused four times */

    char u[256];
    url(u, sizeof(u), s, "/headers");
    const char *hdrs[] = {"X-Test: forty-two", NULL};
    lf_http_client_request req = {.url = u, .headers = hdrs};
    lf_http_response r;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_string_equal(lf_http_response_header(&r, "Content-Type"), "application/json");
    assert_string_equal(lf_http_response_header(&r, "x-custom"), "spaced value");
    assert_string_equal(lf_http_response_header(&r, "X-Echo"), "forty-two");
    assert_null(lf_http_response_header(&r, "Retry-After"));
    assert_int_equal(r.retry_after_ms, -1);
    lf_http_response_free(&r);

    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_int_equal(st.requests, 6);
    assert_int_equal(st.attempts, 6);
    assert_int_equal(st.responses_2xx, 6);
    assert_int_equal(st.connections_opened, 1);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.bytes_received >= 5 * 5 + 2);
    lf_http_client_close(c, NULL, NULL);
}

/* Credentials from the options go with every request, unless the request brings its own; they
 * are copied (the caller's buffer may go away) and a URL's user:password never reaches logs. */
static void test_authorization_option(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    char secret[64];
    snprintf(secret, sizeof secret, "Basic %s", "dXNlcjpwdw==");
    o.authorization = secret;
    lf_http_client *c = blocking_client(&o);
    memset(secret, 'x', sizeof secret - 1); /* the client keeps its own copy */
    char u[256];
    url(u, sizeof(u), s, "/headers");
    lf_http_client_request req = {.url = u};
    lf_http_response r;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_string_equal(lf_http_response_header(&r, "X-Auth-Echo"), "Basic dXNlcjpwdw==");
    lf_http_response_free(&r);
    const char *own[] = {"Authorization: Bearer other", NULL};
    req.headers = own;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_string_equal(lf_http_response_header(&r, "X-Auth-Echo"), "Bearer other");
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);

    /* without the option nothing is sent */
    lf_http_client_opts plain = fast_opts();
    c = blocking_client(&plain);
    req.headers = NULL;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_string_equal(lf_http_response_header(&r, "X-Auth-Echo"), "none");
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static void test_metrics_registry(void **state)
{
    srv *s = *state;
    lf_metrics *reg = NULL;
    assert_int_equal(lf_metrics_new(&reg), 0);
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    assert_int_equal(lf_http_client_metrics(c, reg, "bad name"), -EINVAL);
    assert_int_equal(lf_http_client_metrics(c, reg, "es"), 0);
    assert_int_equal(lf_http_client_metrics(c, reg, "es"), -EINVAL); /* once only */
    lf_http_response r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fetch(c, s, "GET", "/ok", &r), 0);
        lf_http_response_free(&r);
    }
    assert_int_equal(fetch(c, s, "GET", "/flaky/1/503/0", &r), 0);
    lf_http_response_free(&r);
    assert_int_equal(fetch(c, s, "GET", "/status/404", &r), 0);
    lf_http_response_free(&r);
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_metrics_render(reg, &out), 0);
    const char *text = lf_buf_cstr(&out);
    const char *want[] = {
        "lf_http_client_requests_total{client=\"es\"} 5\n",
        "lf_http_client_attempts_total{client=\"es\"} 6\n",
        "lf_http_client_retries_total{client=\"es\"} 1\n",
        "lf_http_client_responses_total{client=\"es\",class=\"2xx\"} 4\n",
        "lf_http_client_responses_total{client=\"es\",class=\"4xx\"} 1\n",
        "lf_http_client_responses_total{client=\"es\",class=\"5xx\"} 1\n",
        "lf_http_client_connections_opened_total{client=\"es\"} 1\n",
        "lf_http_client_in_flight{client=\"es\"} 0\n",
        "lf_http_client_request_seconds_count{client=\"es\"} 5\n",
        "# TYPE lf_http_client_requests_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(text, want[i]))
            fail_msg("missing from /metrics: %s\n%s", want[i], text);
    }
    lf_buf_free(&out);
    lf_http_client_close(c, NULL, NULL);
    lf_metrics_free(reg);
}

static void test_retry_after_seconds_429(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(fetch(c, s, "GET", "/flaky/1/429/1", &r), 0);
    double dt = now_s() - t0;
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    assert_true(dt >= 0.99);   /* waited the whole Retry-After second */
    assert_true(dt < 2.0);     /* and not much more (backoff cap is 100 ms here) */
    lf_http_response_free(&r);
    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.responses_4xx, 1);
    lf_http_client_close(c, NULL, NULL);
}

static void test_retry_after_http_date_503(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    /* A date 2 s ahead at one-second resolution: between 1 and 2 s of waiting. */
    assert_int_equal(fetch(c, s, "GET", "/flaky/1/503/date2", &r), 0);
    double dt = now_s() - t0;
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    assert_true(dt >= 0.95);
    assert_true(dt < 3.0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static void test_retry_after_too_long_returns_response(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.max_retry_after_ms = 1000;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(fetch(c, s, "GET", "/flaky/5/429/30", &r), 0);
    assert_true(now_s() - t0 < 0.9);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.retry_after_ms, 30000);
    assert_string_equal(lf_http_response_header(&r, "Retry-After"), "30");
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static void test_no_retry_on_other_4xx(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    const char *paths[] = {"/status/400", "/status/404", "/status/409", "/status/413"};
    for (size_t i = 0; i < 4; i++) {
        lf_http_response r;
        assert_int_equal(fetch(c, s, "PUT", paths[i], &r), 0);
        assert_int_equal(r.attempts, 1);
        assert_int_equal(r.status, atoi(paths[i] + 8));
        lf_http_response_free(&r);
    }
    assert_int_equal(atomic_load(&s->requests), 4);
    lf_http_client_close(c, NULL, NULL);
}

static void test_backoff_exhausts_on_503(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.max_attempts = 3;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    assert_int_equal(fetch(c, s, "GET", "/status/503", &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 3);
    assert_string_equal(lf_buf_cstr(&r.body), "status");
    lf_http_response_free(&r);
    assert_int_equal(atomic_load(&s->requests), 3);
    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.responses_5xx, 3);
    lf_http_client_close(c, NULL, NULL);
}

static void test_deadline_stops_retries(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.max_attempts = 100;
    o.backoff_base_ms = 100;
    o.backoff_max_ms = 200;
    o.deadline_ms = 600;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(fetch(c, s, "GET", "/status/503", &r), 0);
    double dt = now_s() - t0;
    assert_int_equal(r.status, 503);
    assert_true(r.attempts >= 2 && r.attempts < 100);
    assert_true(dt < 1.0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static void test_connect_refused(void **state)
{
    (void)state;
    int port;
    int fd = listen_any(&port);
    close(fd); /* nothing listens there now */
    lf_http_client_opts o = fast_opts();
    o.max_attempts = 3;
    lf_http_client *c = blocking_client(&o);
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
    lf_http_client_request req = {.url = u};
    lf_http_response r;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), -ECONNREFUSED);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.status, 0);
    lf_http_response_free(&r);
    o.no_retry_transport = true;
    lf_http_client *c2 = blocking_client(&o);
    assert_int_equal(lf_http_client_fetch(c2, &req, &r), -ECONNREFUSED);
    assert_int_equal(r.attempts, 1);
    lf_http_response_free(&r);
    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_int_equal(st.transport_errors, 3);
    lf_http_client_close(c, NULL, NULL);
    lf_http_client_close(c2, NULL, NULL);
}

static void test_total_timeout(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.timeout_ms = 300;
    o.max_attempts = 2;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(fetch(c, s, "GET", "/hang", &r), -ETIMEDOUT);
    double dt = now_s() - t0;
    assert_int_equal(r.attempts, 2);
    assert_true(dt >= 0.55 && dt < 2.0);
    lf_http_response_free(&r);
    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_int_equal(st.timeouts, 2);
    lf_http_client_close(c, NULL, NULL);
}

static void test_low_speed_timeout(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.low_speed_limit = 100; /* bytes/s; the server sends 5 */
    o.low_speed_time_s = 1;
    o.max_attempts = 1;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(fetch(c, s, "GET", "/slow", &r), -ETIMEDOUT);
    double dt = now_s() - t0;
    assert_true(dt >= 0.9 && dt < 4.0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static void test_close_mid_body(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.max_attempts = 2;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    assert_int_equal(fetch(c, s, "GET", "/close-mid-body", &r), -ECONNRESET);
    assert_int_equal(r.attempts, 2);
    lf_http_response_free(&r);
    assert_int_equal(atomic_load(&s->requests), 2);
    lf_http_client_close(c, NULL, NULL);
}

static void test_response_limit(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    o.max_response = 1 << 20;
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    /* Announced length over the limit: refused before reading it. */
    assert_int_equal(fetch(c, s, "GET", "/huge", &r), LF_ELIMIT);
    assert_int_equal(r.attempts, 1);
    assert_true(r.body.len <= (1u << 20));
    lf_http_response_free(&r);
    /* Chunked: no length announced; the limit stops it while streaming. */
    assert_int_equal(fetch(c, s, "GET", "/huge-chunked", &r), LF_ELIMIT);
    assert_int_equal(r.attempts, 1);
    lf_http_response_free(&r);
    /* Exactly at the limit is fine. */
    assert_int_equal(fetch(c, s, "GET", "/big/1048576", &r), 0);
    assert_int_equal(r.body.len, 1u << 20);
    assert_int_equal(r.body.data[27], 'b');
    lf_http_response_free(&r);
    /* A per-request limit overrides the client's. */
    char u[128];
    url(u, sizeof(u), s, "/big/5000");
    lf_http_client_request req = {.url = u, .max_response = 4999};
    assert_int_equal(lf_http_client_fetch(c, &req, &r), LF_ELIMIT);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

static char *write_temp(size_t size, uint32_t *sum)
{
    char *path = strdup("/tmp/lf_http_body_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *data = malloc(size);
    *sum = 0;
    for (size_t i = 0; i < size; i++) {
        data[i] = (char)(i * 7 + (i >> 9));
        *sum = *sum * 31 + (unsigned char)data[i];
    }
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    close(fd);
    free(data);
    return path;
}

static void test_body_from_file_with_speed_limit(void **state)
{
    srv *s = *state;
    uint32_t sum;
    size_t size = 150000;
    char *path = write_temp(size, &sum);
    lf_http_client_opts o = fast_opts();
    o.max_send_speed = 100000; /* bytes/s: 150 kB take at least about 1 s */
    lf_http_client *c = blocking_client(&o);
    char u[128], want[128];
    url(u, sizeof(u), s, "/echo");
    const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
    lf_http_client_request req = {.method = "PUT", .url = u, .body_file = path, .headers = hdrs};
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    double dt = now_s() - t0;
    snprintf(want, sizeof(want), "PUT len=%zu sum=%u", size, sum);
    assert_string_equal(lf_buf_cstr(&r.body), want);
    assert_true(dt >= 0.9);
    lf_http_response_free(&r);

    /* Without the limit it is fast; and a retry re-sends the whole file. */
    lf_http_client_opts o2 = fast_opts();
    lf_http_client *c2 = blocking_client(&o2);
    url(u, sizeof(u), s, "/flaky/1/503/0");
    req.url = u;
    t0 = now_s();
    assert_int_equal(lf_http_client_fetch(c2, &req, &r), 0);
    assert_true(now_s() - t0 < 0.9);
    assert_int_equal(r.attempts, 2);
    assert_string_equal(lf_buf_cstr(&r.body), want);
    lf_http_response_free(&r);

    /* Memory body, POST. */
    url(u, sizeof(u), s, "/echo");
    lf_http_client_request mreq = {.method = "POST", .url = u, .body = "hello", .body_len = 5};
    assert_int_equal(lf_http_client_fetch(c2, &mreq, &r), 0);
    uint32_t hs = 0;
    for (const char *p = "hello"; *p; p++)
        hs = hs * 31 + (unsigned char)*p;
    snprintf(want, sizeof(want), "POST len=5 sum=%u", hs);
    assert_string_equal(lf_buf_cstr(&r.body), want);
    lf_http_response_free(&r);

    /* A missing body file fails before anything is sent. */
    lf_http_client_request bad = {.method = "PUT", .url = u, .body_file = "/nonexistent/lf-body"};
    int before = atomic_load(&s->requests);
    assert_int_equal(lf_http_client_fetch(c2, &bad, &r), -ENOENT);
    assert_int_equal(atomic_load(&s->requests), before);
    lf_http_response_free(&r);
    unlink(path);
    free(path);
    lf_http_client_close(c, NULL, NULL);
    lf_http_client_close(c2, NULL, NULL);
}

static void test_response_to_file(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    char path[] = "/tmp/lf_http_resp_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char u[128];
    url(u, sizeof(u), s, "/big/300000");
    lf_http_client_request req = {.url = u, .response_file = path};
    lf_http_response r;
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_int_equal(r.body.len, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 300000);
    FILE *f = fopen(path, "rb");
    char b[64];
    fseek(f, 299990, SEEK_SET);
    assert_int_equal(fread(b, 1, 10, f), 10);
    fclose(f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(b[i], 'a' + (299990 + i) % 26);
    lf_http_response_free(&r);
    /* The limit applies to files too. */
    req.max_response = 1000;
    url(u, sizeof(u), s, "/huge-chunked");
    assert_int_equal(lf_http_client_fetch(c, &req, &r), LF_ELIMIT);
    lf_http_response_free(&r);
    unlink(path);
    lf_http_client_close(c, NULL, NULL);
}

static void test_proxy(void **state)
{
    srv *s = *state;
    proxy px = {0};
    px.lfd = listen_any(&px.port);
    assert_true(px.lfd >= 0);
    assert_int_equal(pthread_create(&px.thr, NULL, proxy_main, &px), 0);
    char purl[64];
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", px.port);

    /* Explicit proxy option. */
    lf_http_client_opts o = fast_opts();
    o.proxy = purl;
    o.no_proxy = ""; /* bypass nothing, whatever NO_PROXY says */
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    assert_int_equal(fetch(c, s, "GET", "/ok", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(lf_buf_cstr(&r.body), "hello");
    lf_http_response_free(&r);
    assert_int_equal(fetch(c, s, "POST", "/echo", &r), 0);
    assert_string_equal(lf_buf_cstr(&r.body), "POST len=0 sum=0");
    lf_http_response_free(&r);
    assert_int_equal(atomic_load(&px.forwarded), 2);
    lf_http_client_close(c, NULL, NULL);

    /* From the environment (proxy option NULL); and proxy = "" ignores the environment. */
    setenv("http_proxy", purl, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    lf_http_client_opts oe = fast_opts();
    oe.proxy = NULL;
    c = blocking_client(&oe);
    assert_int_equal(fetch(c, s, "GET", "/ok", &r), 0);
    assert_int_equal(r.status, 200);
    lf_http_response_free(&r);
    assert_int_equal(atomic_load(&px.forwarded), 3);
    lf_http_client_close(c, NULL, NULL);
    c = blocking_client(&(lf_http_client_opts){.proxy = ""});
    assert_int_equal(fetch(c, s, "GET", "/ok", &r), 0);
    lf_http_response_free(&r);
    assert_int_equal(atomic_load(&px.forwarded), 3);
    lf_http_client_close(c, NULL, NULL);
    unsetenv("http_proxy");

    atomic_store(&px.stop, true);
    pthread_join(px.thr, NULL);
    close(px.lfd);
}

static void test_methods(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    lf_http_response r;
    assert_int_equal(fetch(c, s, "DELETE", "/echo", &r), 0);
    assert_string_equal(lf_buf_cstr(&r.body), "DELETE len=0 sum=0");
    lf_http_response_free(&r);
    assert_int_equal(fetch(c, s, "HEAD", "/ok", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_string_equal(lf_http_response_header(&r, "Content-Length"), "5");
    lf_http_response_free(&r);
    /* GET with a body (Elasticsearch's search) keeps its method. */
    char u[128];
    url(u, sizeof(u), s, "/echo");
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    lf_http_client_request req = {.method = "GET", .url = u, .body = "{}", .body_len = 2, .headers = hdrs};
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_true(strncmp(lf_buf_cstr(&r.body), "GET len=2 ", 10) == 0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
}

/* Every allocation on the request path may fail: each one in turn gives -ENOMEM (or the request
 * still succeeds when the failed allocation had a fallback), never a crash or a leak (ASan). */
static void test_allocation_failures(void **state)
{
    srv *s = *state;
    lf_http_client_opts o = fast_opts();
    int failures = 0, successes_after = 0;
    for (uint64_t nth = 1; nth <= 60; nth++) {
        lf_http_client *c = NULL;
        lf_fail_arm(LF_FAIL_ALLOC, nth, false);
        int rc = lf_http_client_new(NULL, &o, &c);
        if (rc == 0) {
            lf_http_response r;
            rc = fetch(c, s, "GET", "/headers", &r);
            assert_true(rc == 0 || rc == -ENOMEM);
            if (rc == 0) {
                assert_int_equal(r.status, 200);
                assert_string_equal(lf_http_response_header(&r, "X-Custom"), "spaced value");
            }
            lf_http_response_free(&r);
            lf_http_client_close(c, NULL, NULL);
        } else {
            assert_int_equal(rc, -ENOMEM);
        }
        bool hit = lf_fail_calls(LF_FAIL_ALLOC) >= nth;
        lf_fail_disarm(LF_FAIL_ALLOC);
        if (hit && rc != 0)
            failures++;
        if (!hit) {
            successes_after++;
            break; /* past the last allocation */
        }
    }
    print_message("allocation failure points exercised: %d\n", failures);
    assert_true(failures >= 3);
    assert_int_equal(successes_after, 1);
}

/* ---------------------------------------------------------------- TLS ---- */

static bool have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

static void make_cert(const char *dir, const char *name, char *cert, char *key, size_t n)
{
    char cmd[1024];
    snprintf(cert, n, "%s/%s.pem", dir, name);
    snprintf(key, n, "%s/%s-key.pem", dir, name);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
}

/* Runs `openssl s_server -www` on a free loopback port; extra: a client-CA file to require client
 * certificates, or NULL. Returns the pid; *port_out is where it listens. */
static pid_t start_s_server(const char *cert, const char *key, const char *client_ca, int *port_out)
{
    int port;
    int fd = listen_any(&port);
    close(fd);
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (client_ca)
            execlp("openssl", "openssl", "s_server", "-accept", portstr, "-cert", cert, "-key", key,
                   "-www", "-quiet", "-Verify", "1", "-CAfile", client_ca, (char *)NULL);
        else
            execlp("openssl", "openssl", "s_server", "-accept", portstr, "-cert", cert, "-key", key,
                   "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) { /* bounded wait until it listens */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        up = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (!up)
            usleep(50000);
    }
    assert_true(up);
    *port_out = port;
    return pid;
}

static void test_tls_verification(void **state)
{
    (void)state;
    if (!have_openssl()) {
        print_message("SKIP test_tls_verification: the openssl command is not installed\n");
        skip();
    }
    char dir[] = "/tmp/lf_http_tls_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], key[256], ccert[256], ckey[256];
    make_cert(dir, "server", cert, key, sizeof(cert));
    make_cert(dir, "client", ccert, ckey, sizeof(ccert));
    int port;
    pid_t pid = start_s_server(cert, key, NULL, &port);
    char u[128];
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", port);
    lf_http_client_request req = {.url = u};
    lf_http_response r;

    lf_http_client_opts o = fast_opts();
    lf_http_client *c = blocking_client(&o);
    assert_int_equal(lf_http_client_fetch(c, &req, &r), LF_EAUTH); /* self-signed: refused */
    assert_int_equal(r.attempts, 1);                                 /* and never retried */
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);

    o.ca_file = cert; /* trusting that certificate makes the same server acceptable */
    c = blocking_client(&o);
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_int_equal(r.status, 200);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);

    /* Verification can be turned off explicitly (development only). */
    lf_http_client_opts oi = fast_opts();
    oi.tls_insecure = true;
    c = blocking_client(&oi);
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    /* A server that requires a client certificate: refused without one, served with one. */
    pid = start_s_server(cert, key, ccert, &port);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", port);
    o.max_attempts = 1;
    c = blocking_client(&o);
    assert_true(lf_http_client_fetch(c, &req, &r) < 0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    o.client_cert = ccert;
    o.client_key = ckey;
    c = blocking_client(&o);
    assert_int_equal(lf_http_client_fetch(c, &req, &r), 0);
    assert_int_equal(r.status, 200);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    const char *files[] = {cert, key, ccert, ckey};
    for (int i = 0; i < 4; i++)
        unlink(files[i]);
    rmdir(dir);
}

/* A listener whose accept queue is full drops SYNs, so connecting hangs: the connect timeout must
 * end it with -ETIMEDOUT. */
static void test_connect_timeout(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t alen = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    int fillers[16], nfill = 0;
    bool full = false;
    while (nfill < 16 && !full) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        fillers[nfill++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        full = poll(&p, 1, 200) == 0; /* still connecting: the queue drops our SYNs */
    }
    if (!full) {
        for (int i = 0; i < nfill; i++)
            close(fillers[i]);
        close(lfd);
        print_message("SKIP test_connect_timeout: could not fill the accept queue here\n");
        skip();
    }
    lf_http_client_opts o = fast_opts();
    o.connect_timeout_ms = 300;
    o.max_attempts = 1;
    lf_http_client *c = blocking_client(&o);
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    lf_http_client_request req = {.url = u};
    lf_http_response r;
    double t0 = now_s();
    assert_int_equal(lf_http_client_fetch(c, &req, &r), -ETIMEDOUT);
    double dt = now_s() - t0;
    assert_true(dt >= 0.25 && dt < 2.0);
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
}

/* ---------------------------------------------------------------- loop-bound client ---- */

typedef struct result {
    int calls;
    int rc;
    int status;
    int attempts;
    char body[128];
    double at;
    lf_http_client *chain; /* send the next request from the callback */
    const srv *s;
    int chain_left;
} result;

static void on_done(lf_http_client *c, int rc, lf_http_response *resp, void *arg);

static void send_chain(lf_http_client *c, result *res)
{
    char u[128];
    url(u, sizeof(u), res->s, "/ok");
    lf_http_client_request req = {.url = u};
    assert_int_equal(lf_http_client_send(c, &req, on_done, res), 0);
}

static void on_done(lf_http_client *c, int rc, lf_http_response *resp, void *arg)
{
    result *res = arg;
    res->calls++;
    res->rc = rc;
    res->status = resp->status;
    res->attempts = resp->attempts;
    res->at = now_s();
    snprintf(res->body, sizeof(res->body), "%s", lf_buf_cstr(&resp->body));
    if (res->chain_left > 0) {
        res->chain_left--;
        send_chain(c, res);
    }
}

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static void test_async_requests(void **state)
{
    srv *s = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = NULL;
    assert_int_equal(lf_http_client_new(&loop, &o, &c), 0);
    /* A blocking call on a loop-bound client is refused. */
    lf_http_response r;
    assert_int_equal(fetch(c, s, "GET", "/ok", &r), -EINVAL);
    lf_http_response_free(&r);

    /* Three at once: a plain one, one retried after Retry-After, one that times out. */
    result a = {0}, b = {0}, h = {0}, ch = {.s = s, .chain_left = 4};
    char ua[128], ub[128], uh[128];
    url(ua, sizeof(ua), s, "/echo");
    url(ub, sizeof(ub), s, "/flaky/1/429/1");
    url(uh, sizeof(uh), s, "/hang");
    lf_http_client_request ra = {.method = "PUT", .url = ua, .body = "abc", .body_len = 3};
    lf_http_client_request rb = {.url = ub};
    lf_http_client_request rh = {.url = uh, .timeout_ms = 300, .max_attempts = 1};
    double t0 = now_s();
    assert_int_equal(lf_http_client_send(c, &ra, on_done, &a), 0);
    assert_int_equal(lf_http_client_send(c, &rb, on_done, &b), 0);
    assert_int_equal(lf_http_client_send(c, &rh, on_done, &h), 0);
    /* A failing send returns its error and never calls back. */
    result never = {0};
    lf_http_client_request bad = {.method = "PUT", .url = ua, .body_file = "/nonexistent/x"};
    assert_int_equal(lf_http_client_send(c, &bad, on_done, &never), -ENOENT);
    lf_http_client_request nourl = {.url = NULL};
    assert_int_equal(lf_http_client_send(c, &nourl, on_done, &never), -EINVAL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* no handle stays active when idle */

    assert_int_equal(never.calls, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "PUT len=3 sum=96354");
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 200);
    assert_int_equal(b.attempts, 2);
    assert_true(b.at - t0 >= 0.99 && b.at - t0 < 2.5);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.rc, -ETIMEDOUT);
    assert_true(h.at - t0 < 1.5);

    /* Sequential requests chained from callbacks reuse one pooled connection. */
    int conns_before = atomic_load(&s->conns);
    lf_http_client_stats st0;
    lf_http_client_stats_get(c, &st0);
    send_chain(c, &ch);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ch.calls, 5);
    assert_int_equal(ch.status, 200);
    lf_http_client_stats st;
    lf_http_client_stats_get(c, &st);
    assert_true(atomic_load(&s->conns) - conns_before <= 1);
    assert_true(st.connections_opened - st0.connections_opened <= 1);
    assert_int_equal(st.in_flight, 0);

    int closed = 0;
    lf_http_client_close(c, on_closed, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_tick_close(uv_timer_t *t)
{
    lf_http_client *c = t->data;
    lf_http_client_close(c, NULL, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_async_close_cancels_in_flight(void **state)
{
    srv *s = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_http_client_opts o = fast_opts();
    lf_http_client *c = NULL;
    assert_int_equal(lf_http_client_new(&loop, &o, &c), 0);
    result h = {0}, w = {0};
    char uh[128], uw[128];
    url(uh, sizeof(uh), s, "/hang");
    url(uw, sizeof(uw), s, "/flaky/9/503/5"); /* waits 5 s before its retry */
    lf_http_client_request rh = {.url = uh};
    lf_http_client_request rw = {.url = uw};
    assert_int_equal(lf_http_client_send(c, &rh, on_done, &h), 0);
    assert_int_equal(lf_http_client_send(c, &rw, on_done, &w), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = c;
    uv_timer_start(&t, on_tick_close, 300, 0);
    double t0 = now_s();
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.rc, -ECANCELED);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.rc, -ECANCELED);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_retry_after),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_retry_policy_defaults),
        cmocka_unit_test_setup_teardown(test_authorization_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_seconds_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_http_date_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_too_long_returns_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_retry_on_other_4xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_exhausts_on_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_stops_retries, setup, teardown),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test_setup_teardown(test_total_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_low_speed_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_mid_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_from_file_with_speed_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_to_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        cmocka_unit_test(test_tls_verification),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test_setup_teardown(test_async_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_close_cancels_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
