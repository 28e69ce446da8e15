#include "lf_http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"

#ifndef LF_VERSION
#define LF_VERSION "dev"
#endif

static const int default_retry_statuses[] = {408, 429, 500, 502, 503, 504, 0};

struct counters {
    _Atomic uint64_t requests, attempts, retries;
    _Atomic uint64_t r2xx, r3xx, r4xx, r5xx;
    _Atomic uint64_t transport_errors, timeouts, connections_opened;
    _Atomic uint64_t bytes_sent, bytes_received, in_flight;
};

/* Series in an lf_metrics registry, when attached (all NULL otherwise). */
struct series {
    lf_counter *requests, *attempts, *retries, *r2xx, *r3xx, *r4xx, *r5xx;
    lf_counter *transport_errors, *timeouts, *connections_opened, *bytes_sent, *bytes_received;
    lf_gauge *in_flight;
    lf_histogram *seconds;
};

typedef struct pollctx pollctx;
typedef struct xfer xfer;

struct lf_http_client {
    uv_loop_t *loop; /* NULL for a blocking client */
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout (loop-bound clients) */
    lf_http_client_opts opts;
    char *strings[7]; /* owned copies of the option strings (wiped when freed: one is a secret) */
    xfer *xfers;      /* transfers in flight or waiting to retry */
    pollctx *polls;   /* uv_poll handles not yet being closed */
    int handles_open; /* uv handles whose close callback has not run */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t rng;
    struct counters n;
    struct series m;
};

struct pollctx {
    uv_poll_t poll;
    lf_http_client *c;
    curl_socket_t fd;
    pollctx *prev, *next;
};

struct xfer {
    lf_http_client *c;
    xfer *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    const char *body; /* borrowed */
    size_t body_len;
    int body_fd;
    int64_t body_size;
    int64_t read_off;
    int resp_fd;
    int64_t write_off;
    size_t max_response;
    int max_attempts;
    long timeout_ms;
    int attempt;
    int io_errno;    /* errno of a body-file or allocation failure inside a curl callback */
    bool limit_hit;  /* a response limit stopped the transfer */
    bool in_multi;
    int rc;
    uint64_t start_ns;
    char where[96];  /* "METHOD scheme://host" for logs (never the path: webhook URLs hold secrets) */
    lf_http_response *resp;
    lf_http_response own_resp; /* loop-bound transfers own their response */
    uv_timer_t retry_timer;
    lf_http_cb cb;
    void *arg;
};

/* Every counter goes to the client's own atomics and, when attached, to the registry's series. */
#define CNT_ADD(c, field, v)                                                                       \
    do {                                                                                           \
        uint64_t v_ = (v);                                                                         \
        atomic_fetch_add_explicit(&(c)->n.field, v_, memory_order_relaxed);                        \
        if ((c)->m.field)                                                                          \
            lf_counter_add((c)->m.field, v_);                                                      \
    } while (0)

static void in_flight_add(lf_http_client *c, int delta)
{
    if (delta > 0)
        atomic_fetch_add_explicit(&c->n.in_flight, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&c->n.in_flight, 1, memory_order_relaxed);
    if (c->m.in_flight)
        lf_gauge_add(c->m.in_flight, delta);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- options and policy ---- */

void lf_http_client_opts_default(lf_http_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 60000;
    o->low_speed_limit = 0;
    o->low_speed_time_s = 30;
    o->max_attempts = 4;
    o->backoff_base_ms = 200;
    o->backoff_max_ms = 30000;
    o->max_retry_after_ms = 120000;
    o->deadline_ms = 0;
    memcpy(o->retry_statuses, default_retry_statuses, sizeof(default_retry_statuses));
    o->max_response = 16u << 20;
    o->max_header_bytes = 64u << 10;
    o->max_send_speed = 0;
    o->max_connections = 8;
}

/* Zero fields take the defaults, so a caller may start from a zeroed struct too. */
static void opts_fill_defaults(lf_http_client_opts *o)
{
    lf_http_client_opts d;
    lf_http_client_opts_default(&d);
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = d.connect_timeout_ms;
    if (o->timeout_ms == 0)
        o->timeout_ms = d.timeout_ms;
    if (o->low_speed_time_s <= 0)
        o->low_speed_time_s = d.low_speed_time_s;
    if (o->max_attempts <= 0)
        o->max_attempts = d.max_attempts;
    if (o->backoff_base_ms <= 0)
        o->backoff_base_ms = d.backoff_base_ms;
    if (o->backoff_max_ms <= 0)
        o->backoff_max_ms = d.backoff_max_ms;
    if (o->max_retry_after_ms <= 0)
        o->max_retry_after_ms = d.max_retry_after_ms;
    if (o->retry_statuses[0] == 0)
        memcpy(o->retry_statuses, d.retry_statuses, sizeof(d.retry_statuses));
    o->retry_statuses[LF_HTTP_MAX_RETRY_STATUSES - 1] = 0;
    if (o->max_response == 0)
        o->max_response = d.max_response;
    if (o->max_header_bytes == 0)
        o->max_header_bytes = d.max_header_bytes;
    if (o->max_connections <= 0)
        o->max_connections = d.max_connections;
}

bool lf_http_status_retryable(const lf_http_client_opts *opts, int status)
{
    const int *list = opts->retry_statuses[0] ? opts->retry_statuses : default_retry_statuses;
    for (int i = 0; i < LF_HTTP_MAX_RETRY_STATUSES && list[i]; i++)
        if (list[i] == status)
            return true;
    return false;
}

bool lf_http_error_retryable(const lf_http_client_opts *opts, int rc)
{
    if (opts->no_retry_transport)
        return false;
    switch (rc) {
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ETIMEDOUT:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -EPROTO:
    case -EPIPE:
        return true;
    default:
        return false;
    }
}

int64_t lf_http_backoff_ms(const lf_http_client_opts *opts, int retry, int64_t retry_after_ms,
                           uint64_t rnd)
{
    int64_t cap = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : 0;
    for (int i = 1; i < retry && cap < opts->backoff_max_ms; i++)
        cap *= 2;
    if (cap > opts->backoff_max_ms)
        cap = opts->backoff_max_ms;
    int64_t delay = cap > 0 ? (int64_t)(rnd % ((uint64_t)cap + 1)) : 0;
    if (retry_after_ms >= 0) {
        if (retry_after_ms > opts->max_retry_after_ms)
            return -1;
        if (delay < retry_after_ms)
            delay = retry_after_ms;
    }
    return delay;
}

int64_t lf_http_parse_retry_after(const char *value, int64_t now)
{
    if (!value)
        return -EINVAL;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        int64_t secs = 0;
        const char *p = value;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (secs > INT64_MAX / 10000)
                return -EINVAL;
            secs = secs * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return -EINVAL;
        return secs * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -EINVAL;
    return when > now ? ((int64_t)when - now) * 1000 : 0;
}

static uint64_t rng_next(lf_http_client *c)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- curl callbacks shared by both kinds of client ---- */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line: an interim 1xx or a proxy's answer came first; keep only the last. */
        lf_buf_reset(&x->resp->headers);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len; /* the blank line that ends the block, or an obsolete folded line */
    const char *ns = p, *ne = colon;
    while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
        ne--;
    const char *vs = colon + 1, *ve = p + len;
    while (vs < ve && (*vs == ' ' || *vs == '\t'))
        vs++;
    while (ve > vs && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    lf_buf *h = &x->resp->headers;
    size_t before = h->len;
    int rc = lf_buf_reserve(h, (size_t)(ne - ns) + (size_t)(ve - vs) + 2);
    rc = rc ? rc : lf_buf_append(h, ns, (size_t)(ne - ns));
    rc = rc ? rc : lf_buf_append_char(h, '\0');
    rc = rc ? rc : lf_buf_append(h, vs, (size_t)(ve - vs));
    rc = rc ? rc : lf_buf_append_char(h, '\0');
    if (rc == 0)
        return len;
    lf_buf_truncate(h, before);
    if (rc == LF_ELIMIT)
        x->limit_hit = true;
    else
        x->io_errno = ENOMEM;
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->resp_fd >= 0) {
        if ((uint64_t)x->write_off + len > x->max_response) {
            x->limit_hit = true;
            return 0;
        }
        size_t done = 0;
        while (done < len) {
            ssize_t w = pwrite(x->resp_fd, p + done, len - done, x->write_off + (off_t)done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->io_errno = w < 0 ? errno : EIO;
                return 0;
            }
            done += (size_t)w;
        }
        x->write_off += (int64_t)len;
        return len;
    }
    int rc = lf_buf_append(&x->resp->body, p, len);
    if (rc == 0)
        return len;
    if (rc == LF_ELIMIT)
        x->limit_hit = true;
    else
        x->io_errno = ENOMEM;
    return 0;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t want = size * n;
    int64_t total = x->body_fd >= 0 ? x->body_size : (int64_t)x->body_len;
    if (x->read_off >= total)
        return 0;
    if ((int64_t)want > total - x->read_off)
        want = (size_t)(total - x->read_off);
    if (x->body_fd < 0) {
        memcpy(buf, x->body + x->read_off, want);
        x->read_off += (int64_t)want;
        return want;
    }
    for (;;) {
        ssize_t r = pread(x->body_fd, buf, want, x->read_off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            x->io_errno = r < 0 ? errno : EIO; /* the file shrank under us */
            return CURL_READFUNC_ABORT;
        }
        x->read_off += r;
        return (size_t)r;
    }
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET || off < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    x->read_off = off;
    return CURL_SEEKFUNC_OK;
}

/* ---- transfer set-up, attempts, completion ---- */

static int map_curl_error(xfer *x, CURLcode code)
{
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        if (x->limit_hit)
            return LF_ELIMIT;
        if (x->io_errno)
            return -x->io_errno;
        return code == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;
    case CURLE_FILESIZE_EXCEEDED:
        return LF_ELIMIT;
    case CURLE_COULDNT_CONNECT: {
        long oserr = 0;
        curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == EHOSTUNREACH || oserr == ENETUNREACH || oserr == EADDRNOTAVAIL)
            return -(int)oserr;
        return -ECONNREFUSED;
    }
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_PEER_FAILED_VERIFICATION:
        return LF_EAUTH;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
        return LF_ECONFIG;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_BAD_CONTENT_ENCODING:
        return -EPROTO;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* "METHOD scheme://host[:port]" for log lines: no path or query, and never a user or password
 * written into the URL (user:password@host). */
static void describe_target(xfer *x, const char *method, const char *url)
{
    const char *p = strstr(url, "://");
    if (!p) {
        snprintf(x->where, sizeof(x->where), "%s ?", method);
        return;
    }
    const char *host = p + 3;
    size_t n = strcspn(host, "/?#");
    const char *at = memchr(host, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(x->where, sizeof(x->where), "%s %.*s%.*s", method, (int)(p + 3 - url), url, (int)n, host);
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, nl) == 0 && headers[i][nl] == ':')
            return true;
    return false;
}

static int slist_add(struct curl_slist **l, const char *s)
{
    struct curl_slist *n = curl_slist_append(*l, s);
    if (!n)
        return -ENOMEM;
    *l = n;
    return 0;
}

static void xfer_destroy(xfer *x);

static void client_maybe_free(lf_http_client *c);

static void on_xfer_timer_closed(uv_handle_t *h)
{
    xfer *x = h->data;
    lf_http_client *c = x->c;
    lf_free(x);
    c->handles_open--;
    client_maybe_free(c);
}

static void xfer_destroy(xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    if (x->body_fd >= 0)
        close(x->body_fd);
    if (x->resp_fd >= 0)
        close(x->resp_fd);
    if (x->resp == &x->own_resp)
        lf_http_response_free(&x->own_resp);
    if (x->c->loop)
        uv_close((uv_handle_t *)&x->retry_timer, on_xfer_timer_closed); /* frees x */
    else
        lf_free(x);
}

static void response_init(lf_http_response *r, size_t max_body, size_t max_headers)
{
    memset(r, 0, sizeof(*r));
    r->retry_after_ms = -1;
    lf_buf_init(&r->body, max_body);
    lf_buf_init(&r->headers, max_headers);
}

void lf_http_response_free(lf_http_response *resp)
{
    if (!resp)
        return;
    lf_buf_free(&resp->body);
    lf_buf_free(&resp->headers);
}

const char *lf_http_response_header(const lf_http_response *resp, const char *name)
{
    const char *p = resp->headers.data;
    const char *end = p ? p + resp->headers.len : NULL;
    while (p && p < end) {
        const char *value = p + strlen(p) + 1;
        if (value >= end)
            break;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

/* Builds the transfer and its easy handle; nothing is started. */
static int xfer_new(lf_http_client *c, const lf_http_client_request *req, lf_http_response *resp, xfer **out)
{
    if (!req || !req->url || !*req->url || (req->body && req->body_file) ||
        (req->body_len && !req->body))
        return -EINVAL;
    const char *method = req->method && *req->method ? req->method : "GET";
    xfer *x = lf_calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->c = c;
    x->body_fd = -1;
    x->resp_fd = -1;
    x->max_response = req->max_response ? req->max_response : c->opts.max_response;
    x->max_attempts = req->max_attempts > 0 ? req->max_attempts : c->opts.max_attempts;
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : c->opts.timeout_ms;
    x->resp = resp ? resp : &x->own_resp;
    response_init(x->resp, x->max_response, c->opts.max_header_bytes);
    describe_target(x, method, req->url);
    int rc = -ENOMEM;

    if (req->body_file) {
        x->body_fd = open(req->body_file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (x->body_fd < 0 || fstat(x->body_fd, &st) != 0) {
            rc = -errno;
            goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = -EINVAL;
            goto fail;
        }
        x->body_size = st.st_size;
    } else {
        x->body = req->body;
        x->body_len = req->body_len;
    }
    if (req->response_file) {
        x->resp_fd = open(req->response_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (x->resp_fd < 0) {
            rc = -errno;
            goto fail;
        }
    }

    CURL *e = x->easy = curl_easy_init();
    if (!e)
        goto fail;
    const lf_http_client_opts *o = &c->opts;
    bool ok = true;
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (o->low_speed_limit > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
        SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    }
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "logferry/" LF_VERSION);
    SET(CURLOPT_SSL_VERIFYPEER, o->tls_insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, o->tls_insecure ? 0L : 2L);
    if (o->ca_file)
        SET(CURLOPT_CAINFO, o->ca_file);
    if (o->client_cert)
        SET(CURLOPT_SSLCERT, o->client_cert);
    if (o->client_key)
        SET(CURLOPT_SSLKEY, o->client_key);
    if (o->proxy)
        SET(CURLOPT_PROXY, o->proxy);
    if (o->no_proxy)
        SET(CURLOPT_NOPROXY, o->no_proxy);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response);
    int64_t speed = req->max_send_speed > 0 ? req->max_send_speed : o->max_send_speed;
    if (speed > 0)
        SET(CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)speed);
    if (o->upload_buffer_size > 0)
        SET(CURLOPT_UPLOAD_BUFFERSIZE, o->upload_buffer_size);

    bool has_body = req->body || req->body_file || strcmp(method, "PUT") == 0 ||
                    strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        /* POST machinery with our read callback for every method with a body: one code path for
         * memory and file bodies, a known Content-Length, and the send-speed limit applies. */
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE,
            (curl_off_t)(x->body_fd >= 0 ? x->body_size : (int64_t)x->body_len));
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_READDATA, x);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, x);
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    if (!ok) {
        rc = -EINVAL;
        goto fail;
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        if (slist_add(&x->hdrs, req->headers[i]))
            goto fail;
    if (o->authorization && !has_header(req->headers, "Authorization") && slist_add(&x->hdrs, o->authorization))
        goto fail;
    /* curl would label a POST body form-urlencoded; send no type unless the caller gave one. */
    if (has_body && !has_header(req->headers, "Content-Type") && slist_add(&x->hdrs, "Content-Type:"))
        goto fail;
    if (slist_add(&x->hdrs, "Expect:"))
        goto fail;
    if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK)
        goto fail;
    x->start_ns = uv_hrtime();
    *out = x;
    return 0;

fail:
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    if (x->body_fd >= 0)
        close(x->body_fd);
    if (x->resp_fd >= 0)
        close(x->resp_fd);
    lf_http_response_free(x->resp);
    lf_free(x);
    return rc;
}

static int64_t elapsed_ms(const xfer *x)
{
    return (int64_t)((uv_hrtime() - x->start_ns) / 1000000u);
}

/* Resets per-attempt state and hands the easy handle to the multi handle. */
static int attempt_start(xfer *x)
{
    lf_http_client *c = x->c;
    x->attempt++;
    x->read_off = 0;
    x->write_off = 0;
    x->io_errno = 0;
    x->limit_hit = false;
    lf_buf_reset(&x->resp->body);
    lf_buf_reset(&x->resp->headers);
    if (x->resp_fd >= 0 && ftruncate(x->resp_fd, 0) != 0)
        return -errno;
    long timeout = x->timeout_ms > 0 ? x->timeout_ms : 0;
    if (c->opts.deadline_ms > 0) {
        int64_t left = c->opts.deadline_ms - elapsed_ms(x);
        if (left <= 0)
            return -ETIMEDOUT;
        if (timeout == 0 || left < timeout)
            timeout = (long)left;
    }
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, timeout);
    CNT_ADD(c, attempts, 1);
    CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);
    if (mc != CURLM_OK)
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    x->in_multi = true;
    return 0;
}

/* Records the attempt's outcome; the delay before the next attempt, or -1 when this was the last. */
static int64_t attempt_done(xfer *x, CURLcode code)
{
    lf_http_client *c = x->c;
    long status = 0, conns = 0;
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    CNT_ADD(c, connections_opened, (uint64_t)(conns > 0 ? conns : 0));
    CNT_ADD(c, bytes_sent, (uint64_t)(up > 0 ? up : 0));
    CNT_ADD(c, bytes_received, (uint64_t)(down > 0 ? down : 0));

    int rc = map_curl_error(x, code);
    x->rc = rc;
    x->resp->status = (int)status;
    x->resp->attempts = x->attempt;
    x->resp->retry_after_ms = -1;
    const char *ra = lf_http_response_header(x->resp, "Retry-After");
    if (ra) {
        int64_t ms = lf_http_parse_retry_after(ra, (int64_t)time(NULL));
        if (ms >= 0)
            x->resp->retry_after_ms = ms;
    }
    bool retry;
    if (rc < 0) {
        CNT_ADD(c, transport_errors, 1);
        if (rc == -ETIMEDOUT)
            CNT_ADD(c, timeouts, 1);
        retry = lf_http_error_retryable(&c->opts, rc);
    } else {
        if (status >= 200 && status < 300)
            CNT_ADD(c, r2xx, 1);
        else if (status >= 300 && status < 400)
            CNT_ADD(c, r3xx, 1);
        else if (status >= 400 && status < 500)
            CNT_ADD(c, r4xx, 1);
        else if (status >= 500)
            CNT_ADD(c, r5xx, 1);
        retry = lf_http_status_retryable(&c->opts, (int)status);
    }
    if (!retry || x->attempt >= x->max_attempts || c->closing)
        return -1;
    /* Retry-After counts on the statuses that define it for retries (RFC 9110: 429 and 503). */
    int64_t server_ms = (rc == 0 && (status == 429 || status == 503)) ? x->resp->retry_after_ms : -1;
    int64_t delay = lf_http_backoff_ms(&c->opts, x->attempt, server_ms, rng_next(c));
    if (delay < 0) {
        LF_INFO("http", "%s: Retry-After %lld ms is past the %ld ms we wait; giving up", x->where,
                (long long)server_ms, c->opts.max_retry_after_ms);
        return -1;
    }
    if (c->opts.deadline_ms > 0 && elapsed_ms(x) + delay >= c->opts.deadline_ms)
        return -1;
    CNT_ADD(c, retries, 1);
    if (rc < 0)
        LF_INFO("http", "%s: %s; retry %d in %lld ms", x->where, lf_strerror(rc), x->attempt,
                (long long)delay);
    else
        LF_INFO("http", "%s: HTTP %ld; retry %d in %lld ms", x->where, status, x->attempt,
                (long long)delay);
    return delay;
}

static void finish_times(xfer *x)
{
    x->resp->elapsed_s = (double)(uv_hrtime() - x->start_ns) / 1e9;
    x->resp->attempts = x->attempt;
    if (x->c->m.seconds)
        lf_histogram_observe(x->c->m.seconds, x->resp->elapsed_s);
}

/* ---- client lifetime ---- */

static char *dup_opt(lf_http_client *c, int slot, const char *s, bool *ok)
{
    if (!s)
        return NULL;
    c->strings[slot] = lf_strdup(s);
    if (!c->strings[slot])
        *ok = false;
    return c->strings[slot];
}

static void free_strings(lf_http_client *c)
{
    for (size_t i = 0; i < sizeof(c->strings) / sizeof(c->strings[0]); i++) {
        if (c->strings[i])
            explicit_bzero(c->strings[i], strlen(c->strings[i]));
        lf_free(c->strings[i]);
        c->strings[i] = NULL;
    }
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp);

int lf_http_client_new(uv_loop_t *loop, const lf_http_client_opts *opts, lf_http_client **out)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return -ENOMEM;
    lf_http_client *c = lf_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (opts)
        c->opts = *opts;
    else
        lf_http_client_opts_default(&c->opts);
    opts_fill_defaults(&c->opts);
    bool ok = true;
    c->opts.ca_file = dup_opt(c, 0, c->opts.ca_file, &ok);
    c->opts.client_cert = dup_opt(c, 1, c->opts.client_cert, &ok);
    c->opts.client_key = dup_opt(c, 2, c->opts.client_key, &ok);
    c->opts.proxy = dup_opt(c, 3, c->opts.proxy, &ok);
    c->opts.no_proxy = dup_opt(c, 4, c->opts.no_proxy, &ok);
    c->opts.user_agent = dup_opt(c, 5, c->opts.user_agent, &ok);
    if (c->opts.authorization) { /* kept as the header line it becomes */
        size_t n = strlen(c->opts.authorization) + sizeof "Authorization: ";
        c->strings[6] = lf_malloc(n);
        if (c->strings[6])
            snprintf(c->strings[6], n, "Authorization: %s", c->opts.authorization);
        ok = ok && c->strings[6];
        c->opts.authorization = c->strings[6];
    }
    c->loop = loop;
    if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != (ssize_t)sizeof(c->rng))
        c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c;
    c->rng |= 1;
    c->multi = ok ? curl_multi_init() : NULL;
    if (!c->multi) {
        free_strings(c);
        lf_free(c);
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->opts.max_connections);
    if (loop) {
        int rc = uv_timer_init(loop, &c->timer);
        if (rc) {
            curl_multi_cleanup(c->multi);
            free_strings(c);
            lf_free(c);
            return rc;
        }
        c->timer.data = c;
        c->handles_open = 1;
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    }
    *out = c;
    return 0;
}

void lf_http_client_stats_get(const lf_http_client *c, lf_http_client_stats *s)
{
    struct counters *n = (struct counters *)&c->n;
#define LD(f) atomic_load_explicit(&n->f, memory_order_relaxed)
    s->requests = LD(requests);
    s->attempts = LD(attempts);
    s->retries = LD(retries);
    s->responses_2xx = LD(r2xx);
    s->responses_3xx = LD(r3xx);
    s->responses_4xx = LD(r4xx);
    s->responses_5xx = LD(r5xx);
    s->transport_errors = LD(transport_errors);
    s->timeouts = LD(timeouts);
    s->connections_opened = LD(connections_opened);
    s->bytes_sent = LD(bytes_sent);
    s->bytes_received = LD(bytes_received);
    s->in_flight = LD(in_flight);
#undef LD
}

int lf_http_client_metrics(lf_http_client *c, lf_metrics *reg, const char *name)
{
    if (!c || !reg || !name || !*name || strlen(name) > 64 || c->m.requests)
        return -EINVAL;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return -EINVAL;
    char lbl[128], cls[160];
    snprintf(lbl, sizeof(lbl), "client=\"%s\"", name);
    struct series m = {0};
#define CTR(field, metric, help) m.field = lf_metrics_counter(reg, metric, help, lbl)
    CTR(requests, "lf_http_client_requests_total", "HTTP requests started");
    CTR(attempts, "lf_http_client_attempts_total", "HTTP attempts, retries included");
    CTR(retries, "lf_http_client_retries_total", "HTTP retries after a retryable outcome");
    CTR(transport_errors, "lf_http_client_transport_errors_total",
        "HTTP attempts that got no response (connect, reset, timeout, TLS)");
    CTR(timeouts, "lf_http_client_timeouts_total", "HTTP attempts that timed out");
    CTR(connections_opened, "lf_http_client_connections_opened_total",
        "New connections (attempts minus these reused the keep-alive pool)");
    CTR(bytes_sent, "lf_http_client_sent_bytes_total", "Request body bytes sent");
    CTR(bytes_received, "lf_http_client_received_bytes_total", "Response body bytes received");
#undef CTR
    const char *classes[] = {"2xx", "3xx", "4xx", "5xx"};
    lf_counter **slots[] = {&m.r2xx, &m.r3xx, &m.r4xx, &m.r5xx};
    for (int i = 0; i < 4; i++) {
        snprintf(cls, sizeof(cls), "client=\"%s\",class=\"%s\"", name, classes[i]);
        *slots[i] = lf_metrics_counter(reg, "lf_http_client_responses_total",
                                       "HTTP responses by status class", cls);
    }
    m.in_flight = lf_metrics_gauge(reg, "lf_http_client_in_flight", "HTTP requests in flight", lbl);
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    m.seconds = lf_metrics_histogram(reg, "lf_http_client_request_seconds",
                                     "Whole HTTP requests, retries and waits included", lbl, bounds,
                                     sizeof(bounds) / sizeof(bounds[0]));
    if (!m.requests || !m.attempts || !m.retries || !m.transport_errors || !m.timeouts ||
        !m.connections_opened || !m.bytes_sent || !m.bytes_received || !m.r2xx || !m.r3xx ||
        !m.r4xx || !m.r5xx || !m.in_flight || !m.seconds)
        return -ENOMEM;
    c->m = m;
    return 0;
}

/* ---- blocking client ---- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int lf_http_client_fetch(lf_http_client *c, const lf_http_client_request *req, lf_http_response *resp)
{
    if (!resp)
        return -EINVAL;
    response_init(resp, c ? c->opts.max_response : 0, c ? c->opts.max_header_bytes : 0);
    if (!c || c->loop || c->closing)
        return -EINVAL;
    xfer *x;
    int rc = xfer_new(c, req, resp, &x);
    if (rc)
        return rc;
    CNT_ADD(c, requests, 1);
    in_flight_add(c, 1);
    for (;;) {
        rc = attempt_start(x);
        if (rc)
            break;
        CURLcode code = CURLE_OK;
        bool done = false;
        while (!done) {
            int running = 0;
            CURLMcode mc = curl_multi_perform(c->multi, &running);
            if (mc != CURLM_OK) {
                code = CURLE_OUT_OF_MEMORY;
                break;
            }
            CURLMsg *m;
            int left;
            while ((m = curl_multi_info_read(c->multi, &left)))
                if (m->msg == CURLMSG_DONE && m->easy_handle == x->easy) {
                    code = m->data.result;
                    done = true;
                }
            if (!done)
                curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
        }
        curl_multi_remove_handle(c->multi, x->easy);
        x->in_multi = false;
        int64_t delay = attempt_done(x, code);
        rc = x->rc;
        if (delay < 0)
            break;
        sleep_ms(delay);
    }
    finish_times(x);
    in_flight_add(c, -1);
    x->resp = &x->own_resp; /* the caller keeps resp */
    response_init(&x->own_resp, 0, 0);
    xfer_destroy(x);
    return rc;
}

/* ---- loop-bound client ---- */

static void check_multi_info(lf_http_client *c);

static void client_maybe_free(lf_http_client *c)
{
    if (c->closing && c->handles_open == 0) {
        void (*cb)(void *) = c->close_cb;
        void *arg = c->close_arg;
        free_strings(c);
        lf_free(c);
        if (cb)
            cb(arg);
    }
}

static void on_client_timer_closed(uv_handle_t *h)
{
    lf_http_client *c = h->data;
    c->handles_open--;
    client_maybe_free(c);
}

static void on_poll_closed(uv_handle_t *h)
{
    pollctx *p = h->data;
    lf_http_client *c = p->c;
    lf_free(p);
    c->handles_open--;
    client_maybe_free(c);
}

static void poll_close(pollctx *p)
{
    lf_http_client *c = p->c;
    if (p->prev)
        p->prev->next = p->next;
    else
        c->polls = p->next;
    if (p->next)
        p->next->prev = p->prev;
    uv_poll_stop(&p->poll);
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pollctx *p = h->data;
    lf_http_client *c = p->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(c->multi, p->fd, flags, &running);
    check_multi_info(c);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    lf_http_client *c = userp;
    pollctx *p = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (p) {
            curl_multi_assign(c->multi, s, NULL);
            poll_close(p);
        }
        return 0;
    }
    if (!p) {
        p = lf_calloc(1, sizeof(*p));
        if (!p)
            return -1;
        if (uv_poll_init_socket(c->loop, &p->poll, s) != 0) {
            lf_free(p);
            return -1;
        }
        p->poll.data = p;
        p->c = c;
        p->fd = s;
        p->next = c->polls;
        if (c->polls)
            c->polls->prev = p;
        c->polls = p;
        c->handles_open++;
        curl_multi_assign(c->multi, s, p);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&p->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timeout(uv_timer_t *t)
{
    lf_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    lf_http_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void xfer_unlink(xfer *x)
{
    lf_http_client *c = x->c;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Ends a transfer: unlinked first so that the callback may close the client or send more. */
static void xfer_finish(xfer *x, int rc)
{
    lf_http_client *c = x->c;
    xfer_unlink(x);
    if (x->in_multi) {
        curl_multi_remove_handle(c->multi, x->easy);
        x->in_multi = false;
    }
    uv_timer_stop(&x->retry_timer);
    finish_times(x);
    in_flight_add(c, -1);
    x->cb(c, rc, x->resp, x->arg);
    xfer_destroy(x);
}

static void on_retry_timer(uv_timer_t *t)
{
    xfer *x = t->data;
    int rc = attempt_start(x);
    if (rc) {
        x->rc = rc;
        xfer_finish(x, rc);
    }
}

static void check_multi_info(lf_http_client *c)
{
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode code = m->data.result; /* m is invalid once the handle is removed */
        xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(c->multi, e);
        x->in_multi = false;
        int64_t delay = attempt_done(x, code);
        if (delay >= 0)
            uv_timer_start(&x->retry_timer, on_retry_timer, (uint64_t)delay, 0);
        else
            xfer_finish(x, x->rc);
    }
}

int lf_http_client_send(lf_http_client *c, const lf_http_client_request *req, lf_http_cb cb, void *arg)
{
    if (!c || !c->loop || !cb)
        return -EINVAL;
    if (c->closing)
        return LF_ECLOSED;
    xfer *x;
    int rc = xfer_new(c, req, NULL, &x);
    if (rc)
        return rc;
    rc = uv_timer_init(c->loop, &x->retry_timer);
    if (rc) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        if (x->body_fd >= 0)
            close(x->body_fd);
        if (x->resp_fd >= 0)
            close(x->resp_fd);
        lf_http_response_free(&x->own_resp);
        lf_free(x);
        return rc;
    }
    x->retry_timer.data = x;
    c->handles_open++;
    x->cb = cb;
    x->arg = arg;
    rc = attempt_start(x);
    if (rc) {
        x->cb = NULL;
        xfer_destroy(x); /* the callback is never called for a failed send */
        return rc;
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    CNT_ADD(c, requests, 1);
    in_flight_add(c, 1);
    return 0;
}

void lf_http_client_close(lf_http_client *c, void (*close_cb)(void *arg), void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    if (!c->loop) {
        curl_multi_cleanup(c->multi);
        free_strings(c);
        lf_free(c);
        if (close_cb)
            close_cb(arg);
        return;
    }
    c->close_cb = close_cb;
    c->close_arg = arg;
    c->handles_open++; /* hold the client while callbacks run */
    while (c->xfers) {
        xfer *x = c->xfers;
        x->rc = -ECANCELED;
        xfer_finish(x, -ECANCELED);
    }
    /* Stop watching while curl's sockets are still open, then let curl close them. */
    for (pollctx *p = c->polls; p; p = p->next)
        uv_poll_stop(&p->poll);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->polls)
        poll_close(c->polls);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_client_timer_closed);
    c->handles_open--; /* release the hold; the client goes when libuv has closed the handles */
    client_maybe_free(c);
}

int lf_http_url_check(const char *url, size_t *host_len, lf_buf *err)
{
    const char *host;
    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else {
        lf_buf_msgf(err, "must start with http:// or https://");
        return LF_ECONFIG;
    }
    *host_len = strcspn(host, "/?#");
    if (*host_len == 0) {
        lf_buf_msgf(err, "names no host");
        return LF_ECONFIG;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            lf_buf_msgf(err, "holds a space, a control character or a non-ASCII byte");
            return LF_ECONFIG;
        }
    }
    return 0;
}

int lf_http_url_validate(const void *field, lf_buf *err)
{
    const char *url = *(const char *const *)field;
    size_t host_len;
    return url ? lf_http_url_check(url, &host_len, err) : 0;
}
