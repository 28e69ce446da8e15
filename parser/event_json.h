/* A fast JSON writer for event output: one large buffer, flushed to a file descriptor, strings
 * escaped with a table. Bytes that are not valid UTF-8 are written as U+FFFD, so the output is
 * always valid JSON whatever the input (NUL bytes become \u0000). */
#ifndef LF_EVENT_JSON_H
#define LF_EVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct lf_jw {
    char *buf;
    size_t len, cap;
    int fd;    /* -1: never flushed (the caller takes buf) */
    int error; /* first write error (negated errno), sticky */
} lf_jw;

/* 0 or -ENOMEM. cap is the buffer size (flushes happen when it is three quarters full). */
int lf_jw_init(lf_jw *w, int fd, size_t cap);
void lf_jw_free(lf_jw *w);
/* Writes out what is buffered (to fd). 0 or the sticky error. */
int lf_jw_flush(lf_jw *w);

/* Makes room for n more bytes (flushing, or growing when fd is -1 or n is large). */
int lf_jw_reserve_slow(lf_jw *w, size_t n);

static inline int lf_jw_reserve(lf_jw *w, size_t n)
{
    return w->len + n <= w->cap ? 0 : lf_jw_reserve_slow(w, n);
}

static inline void lf_jw_raw(lf_jw *w, const char *s, size_t n)
{
    if (lf_jw_reserve(w, n) < 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}
/* A quoted, escaped JSON string. */
void lf_jw_str(lf_jw *w, const char *s, size_t n);
/* True when no byte of s needs escaping (so lf_jw_str_clean may write it). */
bool lf_jw_is_clean(const char *s, size_t n);
/* A quoted string known to need no escaping. */
static inline void lf_jw_str_clean(lf_jw *w, const char *s, size_t n)
{
    if (lf_jw_reserve(w, n + 2) < 0)
        return;
    char *o = w->buf + w->len;
    o[0] = '"';
    memcpy(o + 1, s, n);
    o[n + 1] = '"';
    w->len += n + 2;
}
void lf_jw_u64(lf_jw *w, uint64_t v);
void lf_jw_hex64(lf_jw *w, uint64_t v); /* "0123456789abcdef" with quotes */

#endif
