/* HTTP/1.1 server on libuv and http_parser.
 *
 * One server runs on one uv loop (the caller's). Routes are registered before lf_http_server_listen.
 * A request's body is streamed to a sink while it arrives: memory up to the server's
 * body_memory_max, then an unlinked temporary file in body_tmp_dir. The route's handler runs once the
 * whole request (headers and body) has arrived and passed every limit. The handler must eventually
 * call exactly one lf_http_respond*() for the request, either before it returns or later from the
 * same loop (asynchronous handlers: e.g. after a group commit). The request stays valid until then,
 * even if the client disconnects in the meantime (the response is then discarded).
 *
 * Errors the server answers by itself, without calling a handler:
 *   400 malformed request            404 no route for the path      405 path exists, method does not
 *   408 header or body timeout       411 PUT or POST with neither Content-Length nor chunked
 *                                        encoding on a route whose max_body > 0 (routes with max_body
 *                                        0 take such a request as having an empty body)
 *   413 body larger than the route's limit (Content-Length checked before reading the body)
 *   414 URL too long                 431 header too large or too many
 *   503 connection cap reached (answered, then closed) or server draining
 * Error bodies are JSON: {"error":"code","message":"..."}.
 *
 * Keep-alive as HTTP/1.1 specifies; pipelined requests are answered in order. Expect: 100-continue
 * is answered with 100 once the route and its limits accept the request, else with the final error.
 * An error answered before the body was read (404, 405, 411, 413, a refusing headers hook) closes the
 * connection after the response when the request has a body; a 400, 408, 413 or 431 found while
 * parsing always does. Output is bounded per connection: the next pipelined request is parsed only
 * when the previous response has mostly been written, and reading stops while input waits.
 * Request bodies spill to the temp file and respond_fd reads its file with blocking calls on the
 * loop thread (page cache in practice); handlers that need durable writes do them themselves.
 */
#ifndef LF_HTTP_SERVER_H
#define LF_HTTP_SERVER_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lf_buf.h"

typedef struct lf_http_server lf_http_server;
typedef struct lf_http_request lf_http_request;

enum lf_http_method {
    LF_HTTP_GET = 1,
    LF_HTTP_HEAD = 2,
    LF_HTTP_POST = 4,
    LF_HTTP_PUT = 8,
    LF_HTTP_DELETE = 16,
};

typedef struct lf_http_server_limits {
    size_t max_url;             /* bytes in the request target; 414 past it. default 8 KiB */
    size_t max_header_bytes;    /* all header names and values; 431 past it. default 32 KiB */
    unsigned max_headers;       /* header count; 431 past it. default 64 */
    size_t body_memory_max;     /* body kept in memory up to this, then a temp file. default 256 KiB */
    unsigned max_connections;   /* open connections; past it a 503 and close. default 1024 */
    uint64_t header_timeout_ms; /* from first byte of a request to end of its headers. default 10 s */
    uint64_t body_timeout_ms;   /* max gap between body bytes. default 30 s */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request in progress. default 60 s */
    const char *body_tmp_dir;   /* where spilled bodies go (O_TMPFILE or unlinked). default /tmp */
    uint64_t send_timeout_ms;   /* a response that makes no write progress this long (a client that
                                 * does not read): close. default 60 s */
} lf_http_server_limits;

/* Fills *limits with the defaults above. A zero field given to lf_http_server_new means its default. */
void lf_http_server_limits_default(lf_http_server_limits *limits);

/* The body as the handler sees it: in memory (fd == -1) or in a temp file (data == NULL, fd >= 0,
 * positioned at 0). Owned by the request; valid until the response is sent. */
typedef struct lf_http_body {
    const char *data;
    int fd;
    uint64_t len;
} lf_http_body;

struct lf_http_request {
    enum lf_http_method method;
    const char *path;  /* percent-decoded path, without query; NUL-terminated */
    const char *query; /* raw query string without '?', "" when none */
    const char *params[8]; /* path parameters in route order ("{id}"), percent-decoded */
    unsigned n_params;
    lf_http_body body;
    const char *remote_addr; /* "127.0.0.1" */
    void *route_data;        /* the data given to lf_http_server_route */
    void *user;              /* free for the handler's own use */
};

typedef void (*lf_http_handler)(lf_http_request *req);

/* Optional: runs when the headers of a request for this route have arrived, before its body is read.
 * Return 0 to go on, or respond with lf_http_respond*() and return non-zero to refuse early (e.g. 401
 * before an 8 MiB upload is read); the rest of the body is then discarded or the connection closed. */
typedef int (*lf_http_headers_hook)(lf_http_request *req);

/* Creates a server on loop. limits may be NULL for defaults. 0 or negative errno. */
LF_MUST_CHECK int lf_http_server_new(uv_loop_t *loop, const lf_http_server_limits *limits, lf_http_server **out);

/* Registers a route. methods: an OR of lf_http_method. pattern: "/v1/sessions/{id}/events" where
 * each {name} matches one non-empty path segment. max_body: the largest body accepted (0: none).
 * Exact segments win over parameters. 0, -EINVAL (bad pattern), -ENOMEM, -EEXIST. */
LF_MUST_CHECK int lf_http_server_route(lf_http_server *srv, unsigned methods, const char *pattern, uint64_t max_body,
                         lf_http_handler handler, lf_http_headers_hook headers_hook, void *route_data);

/* Binds and listens ("127.0.0.1", 8080; port 0 picks a free one, see lf_http_server_port). */
LF_MUST_CHECK int lf_http_server_listen(lf_http_server *srv, const char *host, int port);
LF_MUST_CHECK int lf_http_server_port(const lf_http_server *srv);

/* Graceful drain: stops accepting, closes idle connections, lets requests in progress finish
 * (responses get Connection: close), then calls on_drained once (from the loop). Requests whose
 * client has gone but whose handler has not answered yet are waited for too. */
void lf_http_server_drain(lf_http_server *srv, void (*on_drained)(lf_http_server *srv, void *arg),
                          void *arg);
/* Frees the server. Meant for after on_drained (or before listen), when it frees everything at once.
 * Called with connections still open, it closes them (requests held by handlers stay valid until
 * their respond call, which then only frees them) and the memory goes once the loop has run the
 * close callbacks: keep running the loop until it returns before uv_loop_close. */
void lf_http_server_free(lf_http_server *srv);

/* Counters for /metrics. */
typedef struct lf_http_server_stats {
    uint64_t connections_accepted, connections_rejected, connections_open;
    uint64_t requests, responses_2xx, responses_4xx, responses_5xx;
    uint64_t timeouts, bytes_in, bytes_out;
} lf_http_server_stats;
void lf_http_server_get_stats(const lf_http_server *srv, lf_http_server_stats *out);

/* Request accessors. Header lookup is case-insensitive; NULL when absent. */
const char *lf_http_request_header(const lf_http_request *req, const char *name);
/* Query parameter `name`, percent-decoded ("+" is a space), into buf (size bytes, NUL-terminated).
 * Returns its decoded length, or -ENOENT (absent), -E2BIG (longer than size - 1 once decoded),
 * -EILSEQ (a bad %-escape, or a NUL byte once decoded) or -ENOTUNIQ (given more than once). A value
 * that cannot be read whole is never the same as an absent one: the caller refuses the request
 * (lf_http_query_problem says why in words). */
LF_MUST_CHECK int lf_http_request_query_param(const lf_http_request *req, const char *name, char *buf, size_t size)
    __attribute__((warn_unused_result));
/* The same over any application/x-www-form-urlencoded text (a query, or a form's body). */
LF_MUST_CHECK int lf_http_form_param(const char *form, size_t form_len, const char *name, char *buf, size_t size);
/* "is too long", "is not valid percent-encoding ...", "is given more than once": after the name. */
const char *lf_http_query_problem(int rc);

/* Responses. Each copies what it needs: the caller keeps ownership of body and headers.
 * extra_headers: NULL or "Name: value\r\n..." lines. Exactly one per request: the call always ends
 * the request (req is freed or handed to the connection; do not touch it afterwards), whatever it
 * returns. Returns 0, LF_ECLOSED when the client had gone (the response was discarded), -EINVAL for
 * a bad status or -ENOMEM (the connection is then closed). For HEAD only the headers are sent. */
int lf_http_respond(lf_http_request *req, int status, const char *content_type, const void *body,
                    size_t len, const char *extra_headers);
/* {"error":code,"message":message} with the right content type. */
int lf_http_respond_error(lf_http_request *req, int status, const char *code, const char *message,
                          const char *extra_headers);
/* A response read from fd (which the server closes when done, also on failure): for large blobs.
 * The file is read from its current offset, len bytes. Do not pass req->body.fd (the request owns it). */
int lf_http_respond_fd(lf_http_request *req, int status, const char *content_type, int fd, uint64_t len,
                       const char *extra_headers);

const char *lf_http_status_text(int status);

#endif
