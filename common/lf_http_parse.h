/* Per-connection HTTP/1.1 request parsing with limits, without sockets (the server and the fuzz
 * target both use it). Wraps http_parser; bytes go in with lf_http_parse_feed(), which stops at the
 * end of each request (pipelined requests stay unparsed until the caller takes the message) and at
 * the first error, which it reports as the HTTP status to answer.
 *
 * What is checked here: request line and header syntax (400), request target length (414), header
 * bytes and count (431), Host present once on HTTP/1.1 (400), Transfer-Encoding other than chunked
 * (400), Content-Length together with Transfer-Encoding (400), chunk syntax (400), a body past the
 * max_body set by lf_http_parse_check_body() (413, also mid-stream for chunked bodies).
 * The body goes to a sink: memory up to body_memory_max, then an unlinked temporary file.
 *
 * Timeouts are the caller's: the state tells it which one applies (HEADERS: header timeout, BODY:
 * body timeout). */
#ifndef LF_HTTP_PARSE_H
#define LF_HTTP_PARSE_H

#include "lf_error.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"

typedef struct lf_http_parse_limits {
    size_t max_url;
    size_t max_header_bytes; /* names and values, trailers included */
    unsigned max_headers;
    size_t body_memory_max;
    const char *body_tmp_dir;
} lf_http_parse_limits;

/* One request as parsed. Owned by whoever took it (lf_http_parse_take); freed with lf_http_msg_free. */
typedef struct lf_http_msg {
    int method;                 /* enum http_method */
    unsigned short http_major, http_minor;
    lf_buf url;                 /* raw request target */
    lf_buf headers;             /* "name\0value\0" pairs, in arrival order */
    unsigned n_headers;
    size_t header_bytes;
    bool has_length;            /* Content-Length was given */
    bool chunked;
    bool expect_continue;       /* Expect: 100-continue */
    uint64_t content_length;    /* when has_length */
    bool keep_alive;            /* valid once headers are complete */
    /* body sink */
    lf_buf body_mem;            /* the body while it fits in body_memory_max */
    int body_fd;                /* -1, or the temp file once spilled (positioned at 0 once complete) */
    uint64_t body_len;
} lf_http_msg;

enum lf_http_parse_state {
    LF_HP_IDLE,     /* no byte of the next request yet */
    LF_HP_HEADERS,  /* request line or headers in progress */
    LF_HP_BODY,     /* headers done, body in progress */
    LF_HP_COMPLETE, /* a whole request is ready: lf_http_parse_take() */
    LF_HP_STOPPED,  /* on_headers answered the request itself and it has a body: stop reading */
    LF_HP_ERROR,    /* error_status says what to answer; the connection must close afterwards */
};

typedef struct lf_http_parse lf_http_parse;

/* Called once per request when its headers are complete and valid; p->msg is the request. Decide
 * the route and call lf_http_parse_check_body(). Return 0 to read the body, or 1 when the request
 * is answered without it (the parser then reads on to the end of a request without body, so the
 * connection can be kept; a request with a body ends in LF_HP_STOPPED), or 2 to fail with the
 * status set by lf_http_parse_fail(). */
typedef int (*lf_http_parse_headers_cb)(lf_http_parse *p, void *ctx);

struct lf_http_parse {
    http_parser hp;
    lf_http_parse_limits limits;
    enum lf_http_parse_state state;
    lf_http_msg *msg;           /* the request in progress (NULL when IDLE or taken) */
    size_t msg_size;            /* bytes to allocate per message (>= sizeof(lf_http_msg)) */
    uint64_t max_body;
    int hdr_state;              /* building a header: none, name, value */
    bool in_trailers;
    bool skip;                  /* on_headers answered this request */
    bool host_seen;
    int error_status;           /* with LF_HP_ERROR: 400, 411, 413, 414, 431, 500 */
    const char *error_code;     /* short JSON code: "bad_request", ... */
    const char *error_message;
    lf_http_parse_headers_cb on_headers;
    void *ctx;
    /* The system http_parser is built lax (no HTTP_PARSER_STRICT): it takes any two bytes after a
     * chunk's data as its CRLF, which lets a front end and this server disagree on where a request
     * ends. We check those two bytes ourselves. */
    uint64_t chunk_left;        /* data bytes left in the current chunk */
    unsigned crlf_seen;         /* bytes of the CRLF after a chunk's data already checked (0..2) */
    bool crlf_due;              /* a chunk's data ended: its CRLF comes next */
    const char *buf, *buf_end;  /* the buffer being fed */
};

/* msg_size lets a caller allocate its own request struct that starts with an lf_http_msg (0 for
 * sizeof(lf_http_msg)); the extra bytes are zeroed. Also raises http_parser's process-wide header
 * size limit when the limits need more than its default. */
void lf_http_parse_init(lf_http_parse *p, const lf_http_parse_limits *limits, size_t msg_size,
                        lf_http_parse_headers_cb on_headers, void *ctx);
/* Frees the request in progress, if any. */
void lf_http_parse_free(lf_http_parse *p);

/* Parses up to len bytes; returns how many were used. Stops early at COMPLETE, STOPPED and ERROR. */
size_t lf_http_parse_feed(lf_http_parse *p, const char *data, size_t len);
/* While a body of known length is read into memory: where the rest of it goes (*out) and how many
 * bytes are still expected, so that the caller can read from the socket straight into it and feed
 * that memory (no copy). 0 when not possible. */
size_t lf_http_parse_body_window(lf_http_parse *p, char **out);
/* After COMPLETE: hands the request to the caller and goes back to IDLE for the next one. */
lf_http_msg *lf_http_parse_take(lf_http_parse *p);

/* From on_headers: sets the route's body limit and checks the framing against it. 0, or an HTTP
 * status (set as the error): 413 when Content-Length passes max_body, 411 for a PUT or POST with
 * neither Content-Length nor chunked encoding on a route that takes a body (max_body > 0). */
LF_MUST_CHECK int lf_http_parse_check_body(lf_http_parse *p, uint64_t max_body);
/* Records an error (status, short code, message) to be answered. Returns status. */
int lf_http_parse_fail(lf_http_parse *p, int status, const char *code, const char *message);

/* Case-insensitive header lookup; NULL when absent. */
const char *lf_http_msg_header(const lf_http_msg *m, const char *name);
/* Frees the message's buffers and closes its body file, then the message itself. */
void lf_http_msg_free(lf_http_msg *m);

/* Request target helpers. Splits the origin-form target into path and query: *path_len bytes of
 * path at *path, the query after '?' (without the fragment) at *query. -1 when the target is not
 * origin-form ("/..."). */
LF_MUST_CHECK int lf_http_target_split(const char *target, size_t len, const char **path, size_t *path_len,
                         const char **query, size_t *query_len);
/* Percent-decodes src[0..len) into dst (room for len + 1), NUL-terminated. plus_space: '+' -> ' '
 * (query strings). Returns the decoded length, or -1 for a bad escape or an encoded NUL. */
long lf_http_pct_decode(const char *src, size_t len, char *dst, bool plus_space);

#endif
