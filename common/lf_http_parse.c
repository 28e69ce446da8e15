#include "lf_http_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_hex.h"
#include "lf_failpoint.h"

/* Header name/value state for building "name\0value\0" pairs from http_parser's partial callbacks. */
enum { HDR_NONE, HDR_NAME, HDR_VALUE };

static lf_http_parse *parse_of(http_parser *hp)
{
    return (lf_http_parse *)hp->data;
}

int lf_http_parse_fail(lf_http_parse *p, int status, const char *code, const char *message)
{
    if (p->state != LF_HP_ERROR) {
        p->state = LF_HP_ERROR;
        p->error_status = status;
        p->error_code = code;
        p->error_message = message;
    }
    return status;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr(extra, c) != NULL);
}

static int on_message_begin(http_parser *hp)
{
    lf_http_parse *p = parse_of(hp);
    lf_http_msg *m = lf_calloc(1, p->msg_size);
    if (!m) {
        lf_http_parse_fail(p, 503, "out_of_memory", "server is out of memory");
        return -1;
    }
    lf_buf_init(&m->url, p->limits.max_url);
    /* names and values plus their two terminators each */
    lf_buf_init(&m->headers, p->limits.max_header_bytes + 2 * (size_t)p->limits.max_headers + 2);
    lf_buf_init(&m->body_mem, p->limits.body_memory_max);
    m->body_fd = -1;
    p->msg = m;
    p->state = LF_HP_HEADERS;
    p->max_body = 0;
    p->hdr_state = HDR_NONE;
    p->chunk_left = 0;
    p->crlf_due = false;
    p->crlf_seen = 0;
    p->in_trailers = false;
    p->skip = false;
    p->host_seen = false;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    lf_http_parse *p = parse_of(hp);
    int rc = lf_buf_append(&p->msg->url, at, len);
    if (rc == LF_ELIMIT) {
        lf_http_parse_fail(p, 414, "uri_too_long", "request target too long");
        return -1;
    }
    if (rc) {
        lf_http_parse_fail(p, 503, "out_of_memory", "server is out of memory");
        return -1;
    }
    return 0;
}

/* Counts header (or trailer) bytes against the limit. */
static int count_header_bytes(lf_http_parse *p, size_t len)
{
    lf_http_msg *m = p->msg;
    if (len > p->limits.max_header_bytes || m->header_bytes > p->limits.max_header_bytes - len) {
        lf_http_parse_fail(p, 431, "headers_too_large", "request header fields too large");
        return -1;
    }
    m->header_bytes += len;
    return 0;
}

static int append_header(lf_http_parse *p, const void *data, size_t len)
{
    if (p->in_trailers)
        return 0; /* trailers are counted, not kept */
    int rc = lf_buf_append(&p->msg->headers, data, len);
    if (rc == LF_ELIMIT) {
        lf_http_parse_fail(p, 431, "headers_too_large", "request header fields too large");
        return -1;
    }
    if (rc) {
        lf_http_parse_fail(p, 503, "out_of_memory", "server is out of memory");
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    lf_http_parse *p = parse_of(hp);
    lf_http_msg *m = p->msg;
    if (p->state == LF_HP_BODY)
        p->in_trailers = true;
    if (p->hdr_state != HDR_NAME) {
        /* a new header: close the previous one */
        if (p->hdr_state == HDR_VALUE && append_header(p, "", 1))
            return -1;
        if (++m->n_headers > p->limits.max_headers) {
            lf_http_parse_fail(p, 431, "too_many_headers", "too many request header fields");
            return -1;
        }
        p->hdr_state = HDR_NAME;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char)at[i])) {
            lf_http_parse_fail(p, 400, "bad_header", "invalid character in a header name");
            return -1;
        }
    }
    if (count_header_bytes(p, len))
        return -1;
    return append_header(p, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    lf_http_parse *p = parse_of(hp);
    if (p->hdr_state == HDR_NAME) {
        if (append_header(p, "", 1))
            return -1;
        p->hdr_state = HDR_VALUE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            lf_http_parse_fail(p, 400, "bad_header", "invalid character in a header value");
            return -1;
        }
    }
    if (count_header_bytes(p, len))
        return -1;
    return append_header(p, at, len);
}

/* Closes the last header so the list is complete pairs. */
static int finish_headers(lf_http_parse *p)
{
    int rc = 0;
    if (p->hdr_state == HDR_NAME)
        rc = append_header(p, "\0", 2); /* a name with an empty value */
    else if (p->hdr_state == HDR_VALUE)
        rc = append_header(p, "", 1);
    p->hdr_state = HDR_NONE;
    return rc;
}

static bool msg_has_body(const lf_http_msg *m)
{
    return m->chunked || (m->has_length && m->content_length > 0);
}

/* Counts the codings of one Transfer-Encoding value ("gzip, chunked"): chunked ones and others. */
static void count_codings(const char *v, unsigned *chunked, unsigned *other)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (!*v)
            break;
        const char *e = v;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t - v == 7 && strncasecmp(v, "chunked", 7) == 0)
            (*chunked)++;
        else
            (*other)++;
        v = e;
    }
}

static int on_headers_complete(http_parser *hp)
{
    lf_http_parse *p = parse_of(hp);
    lf_http_msg *m = p->msg;
    if (finish_headers(p))
        return -1;
    m->method = hp->method;
    m->http_major = hp->http_major;
    m->http_minor = hp->http_minor;
    m->chunked = (hp->flags & F_CHUNKED) != 0;
    m->has_length = (hp->flags & F_CONTENTLENGTH) != 0;
    m->content_length = m->has_length ? hp->content_length : 0;
    m->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;

    if (m->http_major != 1) {
        lf_http_parse_fail(p, 400, "bad_version", "only HTTP/1.x is served");
        return -1;
    }
    unsigned hosts = 0, chunked = 0, other_codings = 0;
    const char *h = m->headers.data, *end = h ? h + m->headers.len : NULL;
    while (h && h < end) {
        const char *v = h + strlen(h) + 1;
        if (strcasecmp(h, "host") == 0)
            hosts++;
        else if (strcasecmp(h, "expect") == 0 && strcasecmp(v, "100-continue") == 0)
            m->expect_continue = true;
        else if (strcasecmp(h, "transfer-encoding") == 0)
            count_codings(v, &chunked, &other_codings);
        h = v + strlen(v) + 1;
    }
    /* RFC 9112 6.1: a coding not understood is 501; chunked may be applied once, and last. The
     * parser library takes "gzip, chunked" for chunked, so the list is checked here whole. */
    if (hp->uses_transfer_encoding || chunked || other_codings) {
        if (other_codings) {
            lf_http_parse_fail(p, 501, "unsupported_transfer_coding", "only the chunked transfer coding is accepted");
            return -1;
        }
        if (chunked != 1 || !m->chunked) {
            lf_http_parse_fail(p, 400, "bad_transfer_encoding", "chunked may be given once");
            return -1;
        }
    }
    if (hosts > 1 || (hosts == 0 && m->http_major == 1 && m->http_minor >= 1)) {
        lf_http_parse_fail(p, 400, "bad_host", "exactly one Host header is required");
        return -1;
    }
    const char *path, *query;
    size_t path_len, query_len;
    if (lf_http_target_split(m->url.data ? m->url.data : "", m->url.len, &path, &path_len, &query,
                             &query_len) != 0) {
        lf_http_parse_fail(p, 400, "bad_target", "request target must be a path");
        return -1;
    }

    p->state = LF_HP_BODY;
    int r = p->on_headers ? p->on_headers(p, p->ctx) : lf_http_parse_check_body(p, 0);
    if (r == 2 || p->state == LF_HP_ERROR) {
        if (p->state != LF_HP_ERROR)
            lf_http_parse_fail(p, 500, "internal", "request refused");
        return -1;
    }
    if (r == 1) {
        p->skip = true;
        if (msg_has_body(m)) {
            p->state = LF_HP_STOPPED;
            http_parser_pause(hp, 1);
        }
        return 0;
    }
    /* a body of known size that fits in memory: one allocation, which reads can fill directly */
    if (m->has_length && m->content_length > 0 && m->content_length <= p->limits.body_memory_max &&
        m->content_length <= p->max_body && lf_buf_reserve(&m->body_mem, m->content_length) != 0) {
        lf_http_parse_fail(p, 503, "out_of_memory", "server is out of memory");
        return -1;
    }
    return 0;
}

size_t lf_http_parse_body_window(lf_http_parse *p, char **out)
{
    lf_http_msg *m = p->msg;
    if (p->state != LF_HP_BODY || !m || !m->has_length || m->chunked || m->body_fd >= 0 ||
        m->body_mem.cap < m->content_length + 1 || m->body_len >= m->content_length ||
        m->body_mem.len != m->body_len)
        return 0;
    *out = m->body_mem.data + m->body_mem.len;
    return (size_t)(m->content_length - m->body_len);
}

int lf_http_parse_check_body(lf_http_parse *p, uint64_t max_body)
{
    lf_http_msg *m = p->msg;
    p->max_body = max_body;
    if (m->has_length && m->content_length > max_body)
        return lf_http_parse_fail(p, 413, "body_too_large", "request body larger than allowed");
    if (!m->has_length && !m->chunked && max_body > 0 &&
        (m->method == HTTP_PUT || m->method == HTTP_POST))
        return lf_http_parse_fail(p, 411, "length_required", "Content-Length or chunked encoding required");
    return 0;
}

static int open_tmp(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    /* file systems without O_TMPFILE: a named file unlinked at once */
    char path[4096];
    if (snprintf(path, sizeof path, "%s/lf-body-XXXXXX", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

static int write_all(int fd, const char *data, size_t len)
{
    if (lf_fail_hit(LF_FAIL_WRITE))
        return -EIO;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Appends body bytes to the sink: memory while it fits, else the temp file. */
static int sink_append(lf_http_parse *p, const char *at, size_t len)
{
    lf_http_msg *m = p->msg;
    if (m->body_fd < 0 && m->body_mem.data && at == m->body_mem.data + m->body_mem.len &&
        m->body_mem.cap > m->body_mem.len + len) {
        /* read straight into the body buffer (lf_http_parse_body_window): nothing to copy */
        m->body_mem.len += len;
        m->body_mem.data[m->body_mem.len] = '\0';
        return 0;
    }
    if (m->body_fd < 0) {
        bool fits = m->body_mem.len + len <= p->limits.body_memory_max &&
                    (!m->has_length || m->content_length <= p->limits.body_memory_max);
        if (fits) {
            if (m->body_mem.cap == 0 && m->has_length && lf_buf_reserve(&m->body_mem, m->content_length))
                return -ENOMEM;
            return lf_buf_append(&m->body_mem, at, len);
        }
        int fd = open_tmp(p->limits.body_tmp_dir ? p->limits.body_tmp_dir : "/tmp");
        if (fd < 0)
            return fd;
        m->body_fd = fd;
        int rc = m->body_mem.len ? write_all(fd, m->body_mem.data, m->body_mem.len) : 0;
        lf_buf_free(&m->body_mem);
        if (rc)
            return rc;
    }
    return write_all(m->body_fd, at, len);
}

/* Checks the CRLF after a chunk's data, as far as it is in [from, end). 0, or -1 (error set). */
static int check_chunk_crlf(lf_http_parse *p, const char *from, const char *end)
{
    while (p->crlf_due && from < end) {
        if (*from != "\r\n"[p->crlf_seen]) {
            lf_http_parse_fail(p, 400, "bad_chunk", "chunk data not followed by CRLF");
            return -1;
        }
        from++;
        if (++p->crlf_seen == 2) {
            p->crlf_due = false;
            p->crlf_seen = 0;
        }
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    lf_http_parse *p = parse_of(hp);
    lf_http_msg *m = p->msg;
    if (m->chunked) {
        p->chunk_left -= len < p->chunk_left ? len : p->chunk_left;
        if (p->chunk_left == 0) {
            p->crlf_due = true;
            p->crlf_seen = 0;
            if (at + len >= p->buf && at + len <= p->buf_end && check_chunk_crlf(p, at + len, p->buf_end))
                return -1;
        }
    }
    if (len > p->max_body || m->body_len > p->max_body - len) {
        lf_http_parse_fail(p, 413, "body_too_large", "request body larger than allowed");
        return -1;
    }
    int rc = sink_append(p, at, len);
    if (rc) {
        lf_http_parse_fail(p, rc == -ENOMEM ? 503 : 500, "body_storage", "could not store the request body");
        return -1;
    }
    m->body_len += len;
    return 0;
}

static int on_chunk_header(http_parser *hp)
{
    lf_http_parse *p = parse_of(hp);
    p->chunk_left = hp->content_length;
    /* refuse a chunk that would pass the limit before reading it */
    if (hp->content_length > p->max_body || p->msg->body_len > p->max_body - hp->content_length) {
        lf_http_parse_fail(p, 413, "body_too_large", "request body larger than allowed");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    lf_http_parse *p = parse_of(hp);
    lf_http_msg *m = p->msg;
    if (m->body_fd >= 0 && lseek(m->body_fd, 0, SEEK_SET) != 0) {
        lf_http_parse_fail(p, 500, "body_storage", "could not store the request body");
        return -1;
    }
    m->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    p->state = LF_HP_COMPLETE;
    http_parser_pause(hp, 1); /* pipelined requests wait until this one is taken */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

void lf_http_parse_init(lf_http_parse *p, const lf_http_parse_limits *limits, size_t msg_size,
                        lf_http_parse_headers_cb on_headers, void *ctx)
{
    memset(p, 0, sizeof *p);
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->limits = *limits;
    p->msg_size = msg_size > sizeof(lf_http_msg) ? msg_size : sizeof(lf_http_msg);
    p->on_headers = on_headers;
    p->ctx = ctx;
    p->state = LF_HP_IDLE;
    /* http_parser counts request line and headers against one process-wide limit (80 KiB by
     * default); make sure ours are the ones that trip. */
    static uint64_t raised;
    uint64_t need = (uint64_t)limits->max_url + limits->max_header_bytes + 4ull * limits->max_headers + 8192;
    if (need > 80 * 1024 && need > raised && need < UINT32_MAX) {
        raised = need;
        http_parser_set_max_header_size((uint32_t)need);
    }
}

void lf_http_msg_free(lf_http_msg *m)
{
    if (!m)
        return;
    lf_buf_free(&m->url);
    lf_buf_free(&m->headers);
    lf_buf_free(&m->body_mem);
    if (m->body_fd >= 0)
        close(m->body_fd);
    lf_free(m);
}

void lf_http_parse_free(lf_http_parse *p)
{
    lf_http_msg_free(p->msg);
    p->msg = NULL;
}

static void map_parser_error(lf_http_parse *p)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        if (p->msg && p->msg->n_headers == 0)
            lf_http_parse_fail(p, 414, "uri_too_long", "request line too long");
        else
            lf_http_parse_fail(p, 431, "headers_too_large", "request header fields too large");
        break;
    case HPE_INVALID_CHUNK_SIZE:
        lf_http_parse_fail(p, 400, "bad_chunk", "invalid chunked encoding");
        break;
    case HPE_INVALID_METHOD:
    case HPE_INVALID_URL:
    case HPE_INVALID_VERSION:
        lf_http_parse_fail(p, 400, "bad_request_line", "malformed request line");
        break;
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        lf_http_parse_fail(p, 400, "bad_content_length", "invalid Content-Length");
        break;
    default:
        lf_http_parse_fail(p, 400, "bad_request", http_errno_description(e));
        break;
    }
}

size_t lf_http_parse_feed(lf_http_parse *p, const char *data, size_t len)
{
    if (p->state == LF_HP_COMPLETE || p->state == LF_HP_STOPPED || p->state == LF_HP_ERROR || len == 0)
        return 0;
    /* the CRLF of a chunk whose data ended with the previous buffer */
    if (p->crlf_due && check_chunk_crlf(p, data, data + (len < 2 ? len : 2)) != 0)
        return 0;
    p->buf = data;
    p->buf_end = data + len;
    size_t n = http_parser_execute(&p->hp, &settings, data, len);
    p->buf = p->buf_end = NULL;
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e == HPE_PAUSED)
        return n;
    if (e != HPE_OK) {
        if (p->state != LF_HP_ERROR)
            map_parser_error(p);
        return n;
    }
    if (n != len && p->state != LF_HP_ERROR) /* the parser stopped without saying why */
        lf_http_parse_fail(p, 400, "bad_request", "unparsable request");
    return n;
}

lf_http_msg *lf_http_parse_take(lf_http_parse *p)
{
    if (p->state != LF_HP_COMPLETE)
        return NULL;
    lf_http_msg *m = p->msg;
    p->msg = NULL;
    p->state = LF_HP_IDLE;
    http_parser_pause(&p->hp, 0);
    return m;
}

const char *lf_http_msg_header(const lf_http_msg *m, const char *name)
{
    const char *h = m->headers.data, *end = h ? h + m->headers.len : NULL;
    while (h && h < end) {
        const char *v = h + strlen(h) + 1;
        if (strcasecmp(h, name) == 0)
            return v;
        h = v + strlen(v) + 1;
    }
    return NULL;
}

int lf_http_target_split(const char *target, size_t len, const char **path, size_t *path_len,
                         const char **query, size_t *query_len)
{
    if (len == 0 || target[0] != '/')
        return -1;
    size_t i = 0;
    while (i < len && target[i] != '?' && target[i] != '#')
        i++;
    *path = target;
    *path_len = i;
    *query = target + i;
    *query_len = 0;
    if (i < len && target[i] == '?') {
        size_t q = ++i;
        while (i < len && target[i] != '#')
            i++;
        *query = target + q;
        *query_len = i - q;
    }
    return 0;
}

long lf_http_pct_decode(const char *src, size_t len, char *dst, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = lf_hex_value(src[i + 1]), lo = lf_hex_value(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            dst[o++] = ' ';
        } else if (c == '\0') {
            return -1;
        } else {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
    return (long)o;
}
