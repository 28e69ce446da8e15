#include "lf_http_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_http_parse.h"
#include "lf_log.h"

#define READ_CHUNK (64 * 1024)     /* one read from a socket */
#define HEAD_READ (4 * 1024)       /* one read while no body is in progress */
#define PENDING_STOP (64 * 1024)   /* stop reading while this much input waits for a busy request */
#define PENDING_MAX (PENDING_STOP + READ_CHUNK)
#define WRITE_HIGH (128 * 1024)    /* parse the next request only below this much unsent output */
#define FD_CHUNK (64 * 1024)       /* respond_fd reads the file in pieces of this size */
#define LINGER_MS 2000             /* after a closing response: read and discard this long at most */
#define LINGER_MAX (1024 * 1024)   /* ... and this many bytes at most */
#define REJECT_MAX 64              /* connections past the cap being answered 503 at once */
#define MAX_SEGMENTS 32

struct route {
    unsigned methods;
    unsigned n_segs;
    uint32_t param_mask;   /* bit i: segment i is a parameter */
    char *storage;         /* the segments, NUL-separated */
    const char *segs[MAX_SEGMENTS];
    uint64_t max_body;
    lf_http_handler handler;
    lf_http_headers_hook hook;
    void *data;
};

typedef struct conn conn;

typedef struct srv_req {
    lf_http_msg msg; /* first: the parser allocates the whole struct */
    lf_http_request pub;
    lf_http_server *srv;
    conn *conn;                  /* NULL once the client has gone */
    const struct route *route;
    char *strbuf;                /* decoded path, parameters, query */
    bool in_handler;
    bool responded;
    struct srv_req *dnext, *dprev; /* detached requests (client gone, handler pending) */
    char remote[48];
} srv_req;

enum timer_kind { T_NONE, T_IDLE, T_HEADER, T_BODY, T_SEND, T_LINGER };

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    lf_http_server *srv;
    conn *prev, *next;
    lf_http_parse parse;
    lf_buf pending;      /* received and not yet parsed */
    srv_req *req;        /* the current request, from its headers until it is done */
    bool req_complete;   /* the parser handed the request over (we own it) */
    bool req_answered;   /* its response is queued */
    bool close_after;    /* close once the queued output is written */
    bool closing;
    bool lingering;
    bool reading;
    bool rejected;       /* over the connection cap */
    bool in_process;
    bool close_pending;  /* closing was asked while parsing: done when the parser has returned */
    int handles;
    enum timer_kind tkind;
    size_t linger_bytes;
    unsigned writes;     /* uv_write requests in flight */
    int fd;              /* respond_fd in progress, or -1 */
    uint64_t fd_left;
    char remote[48];
};

typedef struct wreq {
    uv_write_t w;
    conn *c;
    size_t len;
    char data[];
} wreq;

struct lf_http_server {
    uv_loop_t *loop;
    lf_http_server_limits limits;
    lf_http_parse_limits plimits;
    struct route *routes;
    size_t n_routes, cap_routes;
    uv_tcp_t listener;
    bool listen_open;
    bool listening;
    int port;
    conn *conns;
    unsigned n_conns;     /* accepted under the cap */
    unsigned n_rejecting; /* being answered 503 */
    srv_req *detached;
    unsigned n_detached;
    bool draining, drain_scheduled, drain_timer_open, freeing;
    uv_timer_t drain_timer;
    void (*on_drained)(lf_http_server *, void *);
    void *drained_arg;
    char *rbuf;           /* shared read buffer: libuv hands each read to its callback at once */
    unsigned n_closing;   /* connections whose handles are closing */
    time_t date_sec;
    char date[64];
    lf_http_server_stats stats;
};

static void conn_close(conn *c);
static void conn_after_write(conn *c);
static void conn_process(conn *c, const char *data, size_t len);
static void srv_check_drained(lf_http_server *srv);
static void srv_maybe_destroy(lf_http_server *srv);

/* ---------------------------------------------------------------- status and formatting */

const char *lf_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

void lf_http_server_limits_default(lf_http_server_limits *l)
{
    l->max_url = 8 * 1024;
    l->max_header_bytes = 32 * 1024;
    l->max_headers = 64;
    l->body_memory_max = 256 * 1024;
    l->max_connections = 1024;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->body_tmp_dir = "/tmp";
    l->send_timeout_ms = 60000;
}

static const char *srv_date(lf_http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = now;
    }
    return srv->date;
}

static void count_status(lf_http_server *srv, int status)
{
    if (!srv)
        return;
    if (status >= 200 && status < 300)
        srv->stats.responses_2xx++;
    else if (status >= 400 && status < 500)
        srv->stats.responses_4xx++;
    else if (status >= 500)
        srv->stats.responses_5xx++;
}

/* ---------------------------------------------------------------- writing */

static void timer_set(conn *c, enum timer_kind kind, uint64_t ms);

static void on_write(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    conn *c = r->c;
    lf_free(r);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_after_write(c);
}

/* Queues data (copied) for the client: written at once when the socket takes it, else kept in a
 * write request. 0 or -ENOMEM. */
static int conn_write_parts(conn *c, const char *a, size_t alen, const char *b, size_t blen, bool try_now)
{
    if (c->closing || c->close_pending)
        return LF_ECLOSED;
    c->srv->stats.bytes_out += alen + blen;
    size_t done = 0;
    if (c->writes == 0 && try_now) {
        uv_buf_t bufs[2] = {uv_buf_init((char *)a, (unsigned)alen), uv_buf_init((char *)b, (unsigned)blen)};
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, blen ? 2 : 1);
        if (n > 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            conn_close(c);
            return LF_ECLOSED;
        }
        if (done == alen + blen)
            return 0;
    }
    size_t left = alen + blen - done;
    wreq *r = lf_malloc(sizeof *r + left);
    if (!r) {
        conn_close(c);
        return -ENOMEM;
    }
    r->c = c;
    r->len = left;
    if (done < alen) {
        memcpy(r->data, a + done, alen - done);
        if (blen)
            memcpy(r->data + alen - done, b, blen);
    } else {
        memcpy(r->data, b + (done - alen), left);
    }
    uv_buf_t buf = uv_buf_init(r->data, (unsigned)left);
    int rc = uv_write(&r->w, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc) {
        lf_free(r);
        conn_close(c);
        return LF_ECLOSED;
    }
    c->writes++;
    return 0;
}

static bool conn_busy_writing(conn *c)
{
    return c->fd >= 0 || (c->writes > 0 && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_HIGH);
}

/* ---------------------------------------------------------------- closing */

static void srv_req_free(srv_req *r)
{
    lf_free(r->strbuf);
    lf_http_msg_free(&r->msg);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles > 0)
        return;
    lf_http_server *srv = c->srv;
    lf_buf_free(&c->pending);
    lf_free(c);
    srv->n_closing--;
    srv_check_drained(srv);
    srv_maybe_destroy(srv);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    if (c->in_process) {
        /* inside the parser or a handler called from it: close when they have returned */
        c->close_pending = true;
        return;
    }
    c->closing = true;
    lf_http_server *srv = c->srv;
    srv->n_closing++;
    srv_req *r = c->req;
    if (r) {
        if (!c->req_complete) {
            /* the parser still owns the message */
            lf_free(r->strbuf);
            r->strbuf = NULL;
        } else if (r->in_handler && !r->responded) {
            /* the handler answers later: keep the request until then */
            r->conn = NULL;
            r->dnext = srv->detached;
            r->dprev = NULL;
            if (srv->detached)
                srv->detached->dprev = r;
            srv->detached = r;
            srv->n_detached++;
        } else {
            srv_req_free(r);
        }
        c->req = NULL;
    }
    lf_http_parse_free(&c->parse);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->rejected) {
        srv->n_rejecting--;
    } else {
        srv->n_conns--;
        srv->stats.connections_open--;
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    conn *c = s->data;
    if (status < 0 && !c->closing)
        conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Output done and the connection must close: stop sending, read and discard what the client still
 * sends for a little while, so that our response is not destroyed by a reset. */
static void conn_linger(conn *c)
{
    if (c->lingering || c->closing)
        return;
    c->lingering = true;
    if (c->req && !c->req_complete) {
        lf_free(c->req->strbuf);
        c->req->strbuf = NULL;
        c->req = NULL;
    } else if (c->req) {
        srv_req_free(c->req);
        c->req = NULL;
    }
    lf_buf_free(&c->pending);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        c->lingering = false;
        conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    timer_set(c, T_LINGER, LINGER_MS);
}

static void conn_after_write(conn *c);

/* ---------------------------------------------------------------- timers */

static void on_timer(uv_timer_t *t);

static void timer_set(conn *c, enum timer_kind kind, uint64_t ms)
{
    c->tkind = kind;
    if (kind == T_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void send_error_close(conn *c, int status, const char *code, const char *message);

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    lf_http_server *srv = c->srv;
    switch (c->tkind) {
    case T_IDLE:
    case T_LINGER:
        conn_close(c);
        break;
    case T_HEADER:
    case T_BODY:
        srv->stats.timeouts++;
        send_error_close(c, 408, "timeout",
                         c->tkind == T_HEADER ? "request headers not received in time"
                                              : "request body not received in time");
        break;
    case T_SEND:
        srv->stats.timeouts++;
        conn_close(c);
        break;
    case T_NONE:
        break;
    }
}

/* ---------------------------------------------------------------- responses */

static size_t json_escape(char *out, const char *s, size_t max)
{
    size_t o = 0;
    for (; s && *s && o + 7 < max; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, max - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

/* Formats the status line and headers into out (cap bytes). Returns the length. */
static size_t format_head(lf_http_server *srv, char *out, size_t cap, int status, const char *ctype,
                          uint64_t len, bool close, bool keep_alive_10, const char *extra)
{
    bool no_body = status == 204 || status == 304 || status < 200;
    int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%s", status, lf_http_status_text(status),
                     srv_date(srv), close ? "Connection: close\r\n" : "",
                     keep_alive_10 && !close ? "Connection: keep-alive\r\n" : "", extra ? extra : "");
    size_t o = n > 0 ? (size_t)n : 0;
    if (!no_body) {
        if (ctype && *ctype)
            o += (size_t)snprintf(out + o, cap - o, "Content-Type: %s\r\n", ctype);
        o += (size_t)snprintf(out + o, cap - o, "Content-Length: %llu\r\n", (unsigned long long)len);
    }
    o += (size_t)snprintf(out + o, cap - o, "\r\n");
    return o;
}

static size_t head_cap(const char *ctype, const char *extra)
{
    return 256 + (ctype ? strlen(ctype) : 0) + (extra ? strlen(extra) : 0);
}

/* A response the server makes by itself on a connection that then closes. */
static void send_error_close(conn *c, int status, const char *code, const char *message)
{
    if (c->closing || c->lingering)
        return;
    c->close_after = true;
    if (!c->req_answered) {
        char body[512];
        char msg[300];
        json_escape(msg, message, sizeof msg);
        int blen = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", code, msg);
        char head[512];
        size_t hlen = format_head(c->srv, head, sizeof head, status, "application/json", (uint64_t)blen,
                                  true, false, NULL);
        c->req_answered = true;
        count_status(c->srv, status);
        if (conn_write_parts(c, head, hlen, body, (size_t)blen, true) != 0)
            return;
    }
    conn_after_write(c);
}

static srv_req *req_of(lf_http_request *req)
{
    return (srv_req *)((char *)req - offsetof(srv_req, pub));
}

static bool msg_has_body(const lf_http_msg *m)
{
    return m->chunked || (m->has_length && m->content_length > 0);
}

/* The request's response is queued: the request is over for the connection. */
static void request_done(conn *c)
{
    if (!c->req_complete)
        return; /* answered early: the request ends when the parser has read it (or stopped) */
    srv_req_free(c->req);
    c->req = NULL;
    c->req_complete = false;
    c->req_answered = false;
}

/* Ends a request whose client is gone. */
static int detached_respond(srv_req *r)
{
    lf_http_server *srv = r->srv;
    if (srv) {
        if (r->dprev)
            r->dprev->dnext = r->dnext;
        else
            srv->detached = r->dnext;
        if (r->dnext)
            r->dnext->dprev = r->dprev;
        srv->n_detached--;
    }
    srv_req_free(r);
    if (srv) {
        srv_check_drained(srv);
        srv_maybe_destroy(srv);
    }
    return LF_ECLOSED;
}

static bool response_closes(conn *c, srv_req *r)
{
    return !r->msg.keep_alive || c->srv->draining || c->close_after ||
           (!c->req_complete && msg_has_body(&r->msg));
}

static int respond_common(lf_http_request *req, int status, const char *content_type, const void *body,
                          size_t len, const char *extra_headers, int fd, uint64_t fd_len)
{
    srv_req *r = req_of(req);
    r->responded = true;
    conn *c = r->conn;
    if (!c || c->closing || c->lingering || c->close_pending) {
        if (fd >= 0)
            close(fd);
        if (!c)
            return detached_respond(r);
        return LF_ECLOSED;
    }
    if (status < 100 || status > 999) {
        if (fd >= 0)
            close(fd);
        status = 500;
        content_type = "application/json";
        body = "{\"error\":\"internal\",\"message\":\"invalid status\"}";
        len = strlen(body);
        extra_headers = NULL;
        fd = -1;
    }
    bool head_only = req->method == LF_HTTP_HEAD;
    bool close_conn = response_closes(c, r);
    if (close_conn)
        c->close_after = true;
    uint64_t blen = fd >= 0 ? fd_len : len;
    size_t cap = head_cap(content_type, extra_headers);
    char stackbuf[1024];
    char *head = cap <= sizeof stackbuf ? stackbuf : lf_malloc(cap);
    if (!head) {
        if (fd >= 0)
            close(fd);
        conn_close(c);
        return -ENOMEM;
    }
    bool ka10 = r->msg.http_major == 1 && r->msg.http_minor == 0 && r->msg.keep_alive;
    size_t hlen = format_head(c->srv, head, cap, status, content_type, blen, close_conn, ka10, extra_headers);
    count_status(c->srv, status);
    c->req_answered = true;
    bool no_body = head_only || status == 204 || status == 304 || status < 200;
    int rc = conn_write_parts(c, head, hlen, no_body || fd >= 0 ? NULL : body, no_body || fd >= 0 ? 0 : len, true);
    if (head != stackbuf)
        lf_free(head);
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (fd >= 0) {
        if (no_body || fd_len == 0) {
            close(fd);
        } else {
            c->fd = fd;
            c->fd_left = fd_len;
        }
    }
    request_done(c);
    conn_after_write(c); /* outside of parsing: go on with the next request */
    return 0;
}

int lf_http_respond(lf_http_request *req, int status, const char *content_type, const void *body, size_t len,
                    const char *extra_headers)
{
    return respond_common(req, status, content_type, body, len, extra_headers, -1, 0);
}

int lf_http_respond_error(lf_http_request *req, int status, const char *code, const char *message,
                          const char *extra_headers)
{
    char msg[600];
    json_escape(msg, message, sizeof msg);
    char cd[100];
    json_escape(cd, code, sizeof cd);
    char body[800];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", cd, msg);
    return respond_common(req, status, "application/json", body, (size_t)n, extra_headers, -1, 0);
}

int lf_http_respond_fd(lf_http_request *req, int status, const char *content_type, int fd, uint64_t len,
                       const char *extra_headers)
{
    if (fd < 0)
        return lf_http_respond_error(req, 500, "internal", "no file to send", NULL);
    return respond_common(req, status, content_type, NULL, 0, extra_headers, fd, len);
}

/* Sends the next pieces of a respond_fd body while the socket keeps up. */
static void conn_stream_fd(conn *c)
{
    while (c->fd >= 0 && !c->closing && c->writes == 0) {
        size_t want = c->fd_left < FD_CHUNK ? (size_t)c->fd_left : FD_CHUNK;
        char *buf = lf_malloc(want);
        if (!buf) {
            conn_close(c);
            return;
        }
        ssize_t n = read(c->fd, buf, want);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                lf_free(buf);
                continue;
            }
            /* the file is shorter than announced: the response cannot be completed */
            LF_WARN("http", "response file ended %llu bytes early", (unsigned long long)c->fd_left);
            lf_free(buf);
            conn_close(c);
            return;
        }
        c->fd_left -= (uint64_t)n;
        if (c->fd_left == 0) {
            close(c->fd);
            c->fd = -1;
        }
        /* always queued, so that its callback sends the next piece from the loop */
        int rc = conn_write_parts(c, buf, (size_t)n, NULL, 0, false);
        lf_free(buf);
        if (rc)
            return;
    }
}

/* Output side of a connection: sends more of a file response, or starts the closing linger once
 * a closing response is out. */
static void conn_flush(conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->fd >= 0 && c->writes == 0)
        conn_stream_fd(c);
    if (c->closing)
        return;
    if (c->close_after && c->writes == 0 && c->fd < 0 && (c->req == NULL || c->req_answered))
        conn_linger(c);
}

/* Called whenever output made progress or was queued, outside of parsing. */
static void conn_after_write(conn *c)
{
    if (c->closing || c->in_process)
        return;
    conn_process(c, NULL, 0);
}

/* ---------------------------------------------------------------- routing */

static int parse_pattern(const char *pattern, struct route *rt)
{
    if (!pattern || pattern[0] != '/')
        return -EINVAL;
    rt->storage = lf_strdup(pattern + 1);
    if (!rt->storage)
        return -ENOMEM;
    rt->n_segs = 0;
    rt->param_mask = 0;
    unsigned params = 0;
    char *s = rt->storage;
    if (*s == '\0')
        return 0; /* "/" */
    for (;;) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        size_t len = strlen(s);
        if (len == 0 || rt->n_segs == MAX_SEGMENTS)
            goto bad;
        if (s[0] == '{') {
            if (len < 3 || s[len - 1] != '}' || ++params > 8)
                goto bad;
            for (size_t i = 1; i + 1 < len; i++)
                if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9')))
                    goto bad;
            rt->param_mask |= 1u << rt->n_segs;
        } else if (strpbrk(s, "{}%?#")) {
            goto bad;
        }
        rt->segs[rt->n_segs++] = s;
        if (!slash)
            break;
        s = slash + 1;
    }
    return 0;
bad:
    lf_free(rt->storage);
    rt->storage = NULL;
    return -EINVAL;
}

static bool same_shape(const struct route *a, const struct route *b)
{
    if (a->n_segs != b->n_segs || a->param_mask != b->param_mask)
        return false;
    for (unsigned i = 0; i < a->n_segs; i++)
        if (!(a->param_mask & (1u << i)) && strcmp(a->segs[i], b->segs[i]) != 0)
            return false;
    return true;
}

int lf_http_server_route(lf_http_server *srv, unsigned methods, const char *pattern, uint64_t max_body,
                         lf_http_handler handler, lf_http_headers_hook headers_hook, void *route_data)
{
    const unsigned all = LF_HTTP_GET | LF_HTTP_HEAD | LF_HTTP_POST | LF_HTTP_PUT | LF_HTTP_DELETE;
    if (!srv || !handler || methods == 0 || (methods & ~all))
        return -EINVAL;
    struct route rt = {0};
    int rc = parse_pattern(pattern, &rt);
    if (rc)
        return rc;
    for (size_t i = 0; i < srv->n_routes; i++) {
        if ((srv->routes[i].methods & methods) && same_shape(&srv->routes[i], &rt)) {
            lf_free(rt.storage);
            return -EEXIST;
        }
    }
    if (srv->n_routes == srv->cap_routes) {
        size_t cap = srv->cap_routes ? srv->cap_routes * 2 : 8;
        struct route *n = lf_realloc(srv->routes, cap * sizeof *n);
        if (!n) {
            lf_free(rt.storage);
            return -ENOMEM;
        }
        /* segs point into storage, not into the array, so moving the array is fine */
        srv->routes = n;
        srv->cap_routes = cap;
    }
    rt.methods = methods;
    rt.max_body = max_body;
    rt.handler = handler;
    rt.hook = headers_hook;
    rt.data = route_data;
    srv->routes[srv->n_routes++] = rt;
    return 0;
}

static unsigned method_bit(int m)
{
    switch (m) {
    case HTTP_GET: return LF_HTTP_GET;
    case HTTP_HEAD: return LF_HTTP_HEAD;
    case HTTP_POST: return LF_HTTP_POST;
    case HTTP_PUT: return LF_HTTP_PUT;
    case HTTP_DELETE: return LF_HTTP_DELETE;
    default: return 0;
    }
}

static void allow_header(unsigned allow, char *out, size_t cap)
{
    if (allow & LF_HTTP_GET)
        allow |= LF_HTTP_HEAD;
    static const struct { unsigned bit; const char *name; } names[] = {
        {LF_HTTP_GET, "GET"}, {LF_HTTP_HEAD, "HEAD"}, {LF_HTTP_POST, "POST"},
        {LF_HTTP_PUT, "PUT"}, {LF_HTTP_DELETE, "DELETE"}};
    size_t o = (size_t)snprintf(out, cap, "Allow: ");
    bool first = true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (allow & names[i].bit) {
            o += (size_t)snprintf(out + o, cap - o, "%s%s", first ? "" : ", ", names[i].name);
            first = false;
        }
    }
    snprintf(out + o, cap - o, "\r\n");
}

/* Fills path, params and query of the request and finds its route. Returns the route, or NULL
 * with *status 400 (bad path), 404 or 405 (*allow: the methods the path has). */
static const struct route *route_request(lf_http_server *srv, srv_req *r, int *status, unsigned *allow)
{
    const char *path, *query;
    size_t path_len, query_len;
    if (lf_http_target_split(r->msg.url.data, r->msg.url.len, &path, &path_len, &query, &query_len) != 0) {
        *status = 400; /* the parser refuses such targets already */
        return NULL;
    }
    r->strbuf = lf_malloc(2 * path_len + query_len + 4);
    if (!r->strbuf) {
        *status = 503;
        return NULL;
    }
    char *dec = r->strbuf;
    if (lf_http_pct_decode(path, path_len, dec, false) < 0) {
        *status = 400;
        return NULL;
    }
    char *segbuf = dec + path_len + 1;
    char *qbuf = segbuf + path_len + 2;
    memcpy(qbuf, query, query_len);
    qbuf[query_len] = '\0';
    r->pub.path = dec;
    r->pub.query = qbuf;

    /* split the raw path into decoded segments (an encoded '/' stays inside its segment) */
    const char *segs[MAX_SEGMENTS];
    unsigned n = 0;
    bool too_many = false;
    char *o = segbuf;
    if (path_len > 1 || (path_len == 1 && path[0] != '/')) {
        size_t i = 1;
        for (;;) {
            size_t j = i;
            while (j < path_len && path[j] != '/')
                j++;
            if (n == MAX_SEGMENTS) {
                too_many = true;
                break;
            }
            long dl = lf_http_pct_decode(path + i, j - i, o, false);
            if (dl < 0) {
                *status = 400;
                return NULL;
            }
            segs[n++] = o;
            o += dl + 1;
            if (j >= path_len)
                break;
            i = j + 1;
        }
    }
    unsigned m = method_bit(r->msg.method);
    const struct route *best = NULL;
    int64_t best_score = -1;
    *allow = 0;
    for (size_t k = 0; !too_many && k < srv->n_routes; k++) {
        const struct route *rt = &srv->routes[k];
        if (rt->n_segs != n)
            continue;
        int64_t score = 0;
        bool ok = true;
        for (unsigned i = 0; i < n && ok; i++) {
            if (rt->param_mask & (1u << i))
                ok = segs[i][0] != '\0';
            else if (strcmp(rt->segs[i], segs[i]) == 0)
                score |= (int64_t)1 << (MAX_SEGMENTS - i);
            else
                ok = false;
        }
        if (!ok)
            continue;
        *allow |= rt->methods;
        bool method_ok = (rt->methods & m) || (m == LF_HTTP_HEAD && (rt->methods & LF_HTTP_GET));
        if (method_ok && m && score > best_score) {
            best = rt;
            best_score = score;
        }
    }
    if (!best) {
        *status = *allow ? 405 : 404;
        return NULL;
    }
    unsigned np = 0;
    for (unsigned i = 0; i < n; i++)
        if (best->param_mask & (1u << i))
            r->pub.params[np++] = segs[i];
    r->pub.n_params = np;
    return best;
}

/* ---------------------------------------------------------------- request flow */

static int on_headers(lf_http_parse *p, void *ctx)
{
    conn *c = ctx;
    lf_http_server *srv = c->srv;
    srv_req *r = (srv_req *)p->msg;
    c->req = r;
    c->req_complete = false;
    c->req_answered = false;
    r->conn = c;
    r->srv = srv;
    memcpy(r->remote, c->remote, sizeof r->remote);
    r->pub.remote_addr = r->remote;
    r->pub.body.fd = -1;
    r->pub.body.data = "";
    srv->stats.requests++;
    unsigned mb = method_bit(r->msg.method);
    r->pub.method = mb ? (enum lf_http_method)mb : 0;

    int status = 0;
    unsigned allow = 0;
    const struct route *rt = route_request(srv, r, &status, &allow);
    if (!rt) {
        if (status == 400) {
            lf_http_parse_fail(p, 400, "bad_path", "invalid percent-encoding in the path");
            return 2;
        }
        if (status == 503) {
            lf_http_parse_fail(p, 503, "out_of_memory", "server is out of memory");
            return 2;
        }
        char allow_hdr[80];
        allow_header(allow, allow_hdr, sizeof allow_hdr);
        /* the request has been routed nowhere: answer now, no handler */
        r->in_handler = false;
        if (status == 405)
            lf_http_respond_error(&r->pub, 405, "method_not_allowed", "method not allowed on this path", allow_hdr);
        else
            lf_http_respond_error(&r->pub, 404, "not_found", "no such path", NULL);
        return 1;
    }
    r->route = rt;
    r->pub.route_data = rt->data;
    if (lf_http_parse_check_body(p, rt->max_body) != 0)
        return 2;
    if (rt->hook && rt->hook(&r->pub) != 0) {
        if (!r->responded)
            lf_http_respond_error(&r->pub, 500, "internal", "request refused", NULL);
        return 1;
    }
    if (r->msg.expect_continue && msg_has_body(&r->msg) && r->msg.http_minor >= 1 && !c->closing) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write_parts(c, cont, sizeof cont - 1, NULL, 0, true);
    }
    return 0;
}

static void dispatch(conn *c)
{
    srv_req *r = c->req;
    if (r->msg.body_fd >= 0) {
        r->pub.body.data = NULL;
        r->pub.body.fd = r->msg.body_fd;
    } else {
        r->pub.body.data = r->msg.body_mem.data ? r->msg.body_mem.data : "";
        r->pub.body.fd = -1;
    }
    r->pub.body.len = r->msg.body_len;
    r->in_handler = true;
    r->route->handler(&r->pub);
}

/* Reacts to the parser's state after it consumed k bytes. */
static void after_feed(conn *c, size_t k)
{
    lf_http_server *srv = c->srv;
    switch (c->parse.state) {
    case LF_HP_IDLE:
        break;
    case LF_HP_HEADERS:
        if (c->tkind != T_HEADER) /* the header timeout runs from the first byte */
            timer_set(c, T_HEADER, srv->limits.header_timeout_ms);
        break;
    case LF_HP_BODY:
        if (k > 0 || c->tkind != T_BODY)
            timer_set(c, T_BODY, srv->limits.body_timeout_ms);
        break;
    case LF_HP_COMPLETE: {
        timer_set(c, T_NONE, 0);
        lf_http_parse_take(&c->parse);
        c->req_complete = true;
        if (c->req_answered)
            request_done(c);
        else
            dispatch(c);
        break;
    }
    case LF_HP_STOPPED:
        /* answered before the body: the rest of the input is not read */
        timer_set(c, T_NONE, 0);
        c->close_after = true;
        break;
    case LF_HP_ERROR:
        timer_set(c, T_NONE, 0);
        if (c->req && !c->req_complete) {
            lf_free(c->req->strbuf);
            c->req->strbuf = NULL;
            if (c->req_answered) {
                c->close_after = true;
                break;
            }
        }
        send_error_close(c, c->parse.error_status, c->parse.error_code, c->parse.error_message);
        break;
    }
}

static bool conn_can_parse(conn *c)
{
    if (c->closing || c->lingering || c->close_after || c->close_pending)
        return false;
    if (c->req && c->req_complete)
        return false; /* waiting for the handler's response */
    if (c->parse.state == LF_HP_STOPPED || c->parse.state == LF_HP_ERROR)
        return false;
    return !conn_busy_writing(c);
}

static void conn_update_reading(conn *c)
{
    if (c->closing || c->lingering)
        return;
    bool want = c->pending.len < PENDING_STOP && !c->close_after;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Parses what has arrived (pending input first, then data) as far as the connection may, then
 * moves output along and sets the timer and reading for the state the connection is left in. */
static void conn_process(conn *c, const char *data, size_t len)
{
    if (c->closing || c->lingering)
        return;
    if (c->in_process) { /* not expected: keep the bytes for later */
        if (len && lf_buf_append(&c->pending, data, len) != 0)
            c->close_pending = true;
        return;
    }
    c->in_process = true;
    for (;;) {
        const char *p = data;
        size_t n = len;
        bool from_pending = c->pending.len > 0;
        if (from_pending) {
            if (len && lf_buf_append(&c->pending, data, len) != 0) {
                c->close_pending = true;
                break;
            }
            p = c->pending.data;
            n = c->pending.len;
        }
        data = NULL;
        len = 0;
        size_t used = 0;
        while (used < n && conn_can_parse(c)) {
            size_t k = lf_http_parse_feed(&c->parse, p + used, n - used);
            used += k;
            after_feed(c, k);
        }
        if (c->close_pending)
            break;
        if (from_pending)
            lf_buf_consume(&c->pending, used);
        else if (used < n && !c->close_after && c->parse.state != LF_HP_ERROR &&
                 c->parse.state != LF_HP_STOPPED && lf_buf_append(&c->pending, p + used, n - used) != 0) {
            c->close_pending = true;
            break;
        }
        conn_flush(c);
        if (c->closing || c->lingering || !c->pending.len || !conn_can_parse(c) || used == 0)
            break;
    }
    c->in_process = false;
    if (c->close_pending) {
        conn_close(c);
        return;
    }
    if (c->closing || c->lingering)
        return;
    lf_http_server *srv = c->srv;
    if (c->req && c->req_complete && !c->req_answered) {
        timer_set(c, T_NONE, 0); /* the handler's time is the handler's business */
    } else if (c->writes > 0 || c->fd >= 0) {
        if (c->parse.state == LF_HP_IDLE || !conn_can_parse(c))
            timer_set(c, T_SEND, srv->limits.send_timeout_ms);
    } else if (c->parse.state == LF_HP_IDLE && !c->req && c->pending.len == 0) {
        if (srv->draining) {
            conn_close(c);
            return;
        }
        if (c->tkind != T_IDLE)
            timer_set(c, T_IDLE, srv->limits.idle_timeout_ms);
    }
    conn_update_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    char *direct;
    size_t room;
    /* the rest of a body of known length goes straight to its buffer: one copy less */
    if (!c->lingering && c->pending.len == 0 && c->req && !c->req_complete &&
        (room = lf_http_parse_body_window(&c->parse, &direct)) >= 4096) {
        buf->base = direct;
        buf->len = room;
        return;
    }
    buf->base = c->srv->rbuf;
    /* between requests and in headers read a little (nginx reads headers 1 KiB at a time): a body
     * behind the headers then mostly arrives by the direct path above instead of through a copy */
    buf->len = c->parse.state == LF_HP_BODY ? READ_CHUNK : HEAD_READ;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    lf_http_server *srv = c->srv;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        /* EOF or error: the client is gone (a pending handler's request is kept until it answers) */
        conn_close(c);
        return;
    }
    srv->stats.bytes_in += (uint64_t)nread;
    if (c->lingering) {
        c->linger_bytes += (size_t)nread;
        if (c->linger_bytes > LINGER_MAX)
            conn_close(c);
        return;
    }
    if (c->rejected)
        return;
    conn_process(c, buf->base, (size_t)nread);
}

/* ---------------------------------------------------------------- accepting */

static void on_connection(uv_stream_t *listener, int status)
{
    lf_http_server *srv = listener->data;
    if (status < 0 || srv->draining)
        return;
    conn *c = lf_calloc(1, sizeof *c);
    if (!c) {
        /* take the connection off the backlog anyway, so the loop does not spin */
        uv_tcp_t tmp;
        if (uv_tcp_init(srv->loop, &tmp) == 0) {
            uv_accept(listener, (uv_stream_t *)&tmp);
            uv_close((uv_handle_t *)&tmp, NULL);
        }
        return;
    }
    c->srv = srv;
    c->fd = -1;
    lf_buf_init(&c->pending, PENDING_MAX);
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    bool over = srv->n_conns >= srv->limits.max_connections;
    c->rejected = over;
    if (over) {
        srv->n_rejecting++;
        srv->stats.connections_rejected++;
    } else {
        srv->n_conns++;
        srv->stats.connections_accepted++;
        srv->stats.connections_open++;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof c->remote);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof c->remote);
    }
    lf_http_parse_init(&c->parse, &srv->plimits, sizeof(srv_req), on_headers, c);
    if (over) {
        if (srv->n_rejecting > REJECT_MAX) {
            conn_close(c); /* too many to even answer */
            return;
        }
        send_error_close(c, 503, "overloaded", "too many connections");
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    timer_set(c, T_IDLE, srv->limits.idle_timeout_ms);
}

/* ---------------------------------------------------------------- server */

int lf_http_server_new(uv_loop_t *loop, const lf_http_server_limits *limits, lf_http_server **out)
{
    if (!loop || !out)
        return -EINVAL;
    lf_http_server *srv = lf_calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->rbuf = lf_malloc(READ_CHUNK);
    if (!srv->rbuf) {
        lf_free(srv);
        return -ENOMEM;
    }
    srv->loop = loop;
    lf_http_server_limits d;
    lf_http_server_limits_default(&d);
    srv->limits = d;
    if (limits) {
#define TAKE(f) if (limits->f) srv->limits.f = limits->f
        TAKE(max_url);
        TAKE(max_header_bytes);
        TAKE(max_headers);
        TAKE(body_memory_max);
        TAKE(max_connections);
        TAKE(header_timeout_ms);
        TAKE(body_timeout_ms);
        TAKE(idle_timeout_ms);
        TAKE(body_tmp_dir);
        TAKE(send_timeout_ms);
#undef TAKE
    }
    srv->plimits.max_url = srv->limits.max_url;
    srv->plimits.max_header_bytes = srv->limits.max_header_bytes;
    srv->plimits.max_headers = srv->limits.max_headers;
    srv->plimits.body_memory_max = srv->limits.body_memory_max;
    srv->plimits.body_tmp_dir = srv->limits.body_tmp_dir;
    srv->port = -1;
    *out = srv;
    return 0;
}

int lf_http_server_listen(lf_http_server *srv, const char *host, int port)
{
    if (srv->listen_open || srv->draining)
        return -EALREADY;
    struct sockaddr_storage ss;
    int rc;
    if (host && strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host ? host : "0.0.0.0", port, (struct sockaddr_in *)&ss);
    if (rc)
        return rc;
    rc = uv_tcp_init(srv->loop, &srv->listener);
    if (rc)
        return rc;
    srv->listener.data = srv;
    srv->listen_open = true;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc) {
        /* the handle is closed by lf_http_server_free or drain */
        return rc;
    }
    int sl = sizeof ss;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &sl) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    srv->listening = true;
    return 0;
}

int lf_http_server_port(const lf_http_server *srv)
{
    return srv->port;
}

static void on_listener_closed(uv_handle_t *h)
{
    lf_http_server *srv = h->data;
    srv->listen_open = false;
    srv_check_drained(srv);
    srv_maybe_destroy(srv);
}

static void on_drain_timer_closed(uv_handle_t *h)
{
    lf_http_server *srv = h->data;
    srv->drain_timer_open = false;
    if (srv->freeing) {
        srv_maybe_destroy(srv);
        return;
    }
    if (srv->on_drained)
        srv->on_drained(srv, srv->drained_arg);
}

static void on_drain_timer(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_drain_timer_closed);
}

static void srv_check_drained(lf_http_server *srv)
{
    if (!srv->draining || srv->drain_scheduled || srv->freeing)
        return;
    if (srv->listen_open || srv->conns || srv->n_closing || srv->n_detached)
        return;
    srv->drain_scheduled = true;
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    srv->drain_timer_open = true;
    uv_timer_start(&srv->drain_timer, on_drain_timer, 0, 0);
}

void lf_http_server_drain(lf_http_server *srv, void (*on_drained)(lf_http_server *srv, void *arg), void *arg)
{
    if (srv->draining)
        return;
    srv->draining = true;
    srv->on_drained = on_drained;
    srv->drained_arg = arg;
    if (srv->listen_open)
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (!c->req && c->parse.state == LF_HP_IDLE && c->pending.len == 0 && c->writes == 0 && c->fd < 0 &&
            !c->lingering)
            conn_close(c);
    }
    srv_check_drained(srv);
}

static void srv_destroy(lf_http_server *srv)
{
    for (srv_req *r = srv->detached; r; r = r->dnext)
        r->srv = NULL; /* their respond frees them alone */
    for (size_t i = 0; i < srv->n_routes; i++)
        lf_free(srv->routes[i].storage);
    lf_free(srv->routes);
    lf_free(srv->rbuf);
    lf_free(srv);
}

static void srv_maybe_destroy(lf_http_server *srv)
{
    if (srv->freeing && !srv->listen_open && !srv->conns && !srv->n_closing && !srv->drain_timer_open)
        srv_destroy(srv);
}

void lf_http_server_free(lf_http_server *srv)
{
    if (!srv)
        return;
    srv->freeing = true;
    if (!srv->listen_open && !srv->conns && !srv->n_closing && !srv->drain_timer_open) {
        srv_destroy(srv);
        return;
    }
    /* handles still open: close them; the memory goes when the loop has run their close callbacks */
    if (srv->listen_open && !uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    if (srv->drain_timer_open && !uv_is_closing((uv_handle_t *)&srv->drain_timer))
        uv_close((uv_handle_t *)&srv->drain_timer, on_drain_timer_closed);
    conn *next;
    for (conn *c = srv->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

void lf_http_server_get_stats(const lf_http_server *srv, lf_http_server_stats *out)
{
    *out = srv->stats;
}

/* ---------------------------------------------------------------- request accessors */

const char *lf_http_request_header(const lf_http_request *req, const char *name)
{
    const srv_req *r = (const srv_req *)((const char *)req - offsetof(srv_req, pub));
    return lf_http_msg_header(&r->msg, name);
}

/* Decoded length of a query value, or -1 for a bad escape or a NUL byte. */
static long pct_decoded_len(const char *v, size_t n)
{
    long k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        if (v[i] == '%') {
            if (i + 2 >= n)
                return -1;
            i += 2;
        } else if (v[i] == '\0') {
            return -1;
        }
    }
    return k;
}

int lf_http_request_query_param(const lf_http_request *req, const char *name, char *buf, size_t size)
{
    return lf_http_form_param(req->query, req->query ? strlen(req->query) : 0, name, buf, size);
}

int lf_http_form_param(const char *form, size_t form_len, const char *name, char *buf, size_t size)
{
    const char *q = form, *end = form + form_len;
    size_t name_len = strlen(name);
    int found = -ENOENT;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t len = amp ? (size_t)(amp - q) : (size_t)(end - q);
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        char key[256];
        /* a key is compared decoded ("sit%65" is "site"); one that cannot be decoded is not ours */
        if (klen < sizeof key && klen <= 3 * name_len && lf_http_pct_decode(q, klen, key, true) == (long)name_len &&
            memcmp(key, name, name_len) == 0) {
            if (found != -ENOENT)
                return -ENOTUNIQ; /* given twice: taking either would drop the other */
            const char *v = eq ? eq + 1 : q + len;
            size_t vlen = eq ? len - klen - 1 : 0;
            long dl = pct_decoded_len(v, vlen);
            if (dl < 0)
                found = -EILSEQ;
            else if ((size_t)dl + 1 > size)
                found = -E2BIG;
            else {
                long n = lf_http_pct_decode(v, vlen, buf, true);
                found = n < 0 ? -EILSEQ : (int)n; /* %00 decodes to NUL: refused too */
            }
        }
        q = amp ? amp + 1 : NULL;
    }
    return found;
}

const char *lf_http_query_problem(int rc)
{
    switch (rc) {
    case -E2BIG: return "is too long";
    case -EILSEQ: return "is not valid percent-encoding (or holds a NUL byte)";
    case -ENOTUNIQ: return "is given more than once";
    default: return "cannot be read";
    }
}
