/* Fuzz target for the request parsing the HTTP server uses (lf_http_parse): arbitrary bytes, fed in
 * pieces of varying size (the first input byte seeds the split), as one connection would receive
 * them, pipelined requests included. Checks the invariants the server relies on: a request handed
 * over has a body within its route's limit, stored completely (memory or temp file), an error always
 * carries a 4xx/5xx status, and the parser never consumes more than it was given. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_http_parse.h"
#include "lf_http_server.h"

/* The parser's source is compiled into this target rather than taken from lf_common, so that a
 * libFuzzer build instruments it (lf_common is built without coverage) and the fuzzer is guided by
 * the parser's branches. The archive's copy is then never pulled in: no duplicate symbols. */
#include "../../common/lf_http_parse.c"

#define UPLOAD_MAX 4096

static int on_headers(lf_http_parse *p, void *ctx)
{
    (void)ctx;
    lf_http_msg *m = p->msg;
    const char *path, *query;
    size_t path_len, query_len;
    if (lf_http_target_split(m->url.data, m->url.len, &path, &path_len, &query, &query_len) != 0)
        abort(); /* the parser checked the target before calling us */
    char *dec = malloc(path_len + query_len + 1);
    if (!dec)
        return 2;
    long dl = lf_http_pct_decode(path, path_len, dec, false);
    if (dl >= 0 && (size_t)dl > path_len)
        abort();
    if (lf_http_pct_decode(query, query_len, dec, true) > (long)query_len)
        abort();
    free(dec);
    if (dl < 0) {
        lf_http_parse_fail(p, 400, "bad_path", "bad path");
        return 2;
    }
    if (path_len >= 5 && memcmp(path, "/skip", 5) == 0)
        return 1; /* answered without reading the body */
    uint64_t max = path_len >= 7 && memcmp(path, "/upload", 7) == 0 ? UPLOAD_MAX : 0;
    return lf_http_parse_check_body(p, max) ? 2 : 0;
}

static void check_msg(lf_http_msg *m)
{
    if (m->body_len > UPLOAD_MAX)
        abort();
    if (m->has_length && !m->chunked && m->body_len != m->content_length)
        abort();
    if (m->body_fd >= 0) {
        char buf[1024];
        uint64_t total = 0;
        ssize_t n;
        while ((n = read(m->body_fd, buf, sizeof buf)) > 0)
            total += (uint64_t)n;
        if (total != m->body_len)
            abort();
    } else if (m->body_mem.len != m->body_len) {
        abort();
    }
    (void)lf_http_msg_header(m, "host");
    (void)lf_http_msg_header(m, "content-type");
    /* the query accessor handlers use, on the request's query string */
    const char *path, *query;
    size_t path_len, query_len;
    if (lf_http_target_split(m->url.data, m->url.len, &path, &path_len, &query, &query_len) != 0)
        abort();
    char *q = strndup(query, query_len);
    if (!q)
        return;
    lf_http_request req = {.query = q};
    char small[8], big[300];
    /* a value is either read whole (its length, no NUL inside) or refused with a reason */
    int n = lf_http_request_query_param(&req, "q", small, sizeof small);
    if (n >= 0 && (size_t)n != strlen(small))
        abort();
    if (n < 0 && n != -ENOENT && n != -E2BIG && n != -EILSEQ && n != -ENOTUNIQ)
        abort();
    n = lf_http_request_query_param(&req, "a b", big, sizeof big);
    if (n >= 0 && ((size_t)n != strlen(big) || (size_t)n >= sizeof big))
        abort();
    if (n == -E2BIG && strlen(q) < sizeof big - 1)
        abort(); /* too long once decoded, yet the whole query is shorter */
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0];
    data++;
    size--;
    lf_http_parse_limits limits = {
        .max_url = 256, .max_header_bytes = 1024, .max_headers = 16, .body_memory_max = 64, .body_tmp_dir = "/tmp"};
    lf_http_parse p;
    lf_http_parse_init(&p, &limits, 0, on_headers, NULL);
    size_t off = 0;
    unsigned requests = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = seed % 8 == 0 ? size - off : 1 + (seed >> 16) % 97;
        if (piece > size - off)
            piece = size - off;
        size_t n = lf_http_parse_feed(&p, (const char *)data + off, piece);
        if (n > piece)
            abort();
        off += n;
        if (p.state == LF_HP_COMPLETE) {
            lf_http_msg *m = lf_http_parse_take(&p);
            check_msg(m);
            bool keep = m->keep_alive;
            lf_http_msg_free(m);
            requests++;
            if (!keep)
                break;
        } else if (p.state == LF_HP_ERROR) {
            if (p.error_status < 400 || p.error_status > 599 || !p.error_code)
                abort();
            break;
        } else if (p.state == LF_HP_STOPPED) {
            break;
        } else if (n < piece) {
            abort(); /* a parser that stops must say why */
        }
    }
    lf_http_parse_free(&p);
    return 0;
}
