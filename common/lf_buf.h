/* Bounded dynamic buffer (curl's dynbuf idea). Every buffer fed from outside input has a maximum
 * size; growing past it fails with LF_ELIMIT and leaves the buffer as it was. The data is always
 * NUL-terminated (the terminator is not counted in len), so text can be used as a C string. */
#ifndef LF_BUF_H
#define LF_BUF_H

#include "lf_error.h"

#include <stdarg.h>
#include <stddef.h>

typedef struct lf_buf {
    char *data;  /* owned; NULL until the first append */
    size_t len;  /* bytes used, not counting the terminator */
    size_t cap;  /* bytes allocated */
    size_t max;  /* largest len allowed */
} lf_buf;

#define LF_BUF_INIT(max_len) {NULL, 0, 0, (max_len)}

void lf_buf_init(lf_buf *b, size_t max_len);
/* Frees the storage; the buffer is empty and usable again with the same maximum. */
void lf_buf_free(lf_buf *b);
/* Empties the buffer and keeps its storage for reuse. */
void lf_buf_reset(lf_buf *b);

/* 0, -ENOMEM, or LF_ELIMIT when the result would pass max. On failure the buffer is unchanged. */
LF_MUST_CHECK int lf_buf_append(lf_buf *b, const void *data, size_t len);
LF_MUST_CHECK int lf_buf_append_str(lf_buf *b, const char *s);
LF_MUST_CHECK int lf_buf_append_char(lf_buf *b, char c);
LF_MUST_CHECK int lf_buf_appendf(lf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
LF_MUST_CHECK int lf_buf_vappendf(lf_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Message text for people (an error's explanation, a health detail): appends like lf_buf_appendf
 * when it can and otherwise leaves the text out, so that failing to explain a result never changes
 * the result. b may be NULL. Anything that is data (SQL, JSON, output) uses lf_buf_appendf and checks
 * it. This is the convention for error text: the caller passes an lf_buf *err it owns. */
void lf_buf_msgf(lf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ensures room for extra more bytes without further allocation. */
LF_MUST_CHECK int lf_buf_reserve(lf_buf *b, size_t extra);
/* Drops the first n bytes (a consumed prefix). */
void lf_buf_consume(lf_buf *b, size_t n);
void lf_buf_truncate(lf_buf *b, size_t len);

/* The text, "" when empty. Valid until the next change to the buffer. */
const char *lf_buf_cstr(const lf_buf *b);
/* Hands the storage to the caller (free() it); the buffer is left empty. NULL when empty. */
char *lf_buf_steal(lf_buf *b, size_t *len);

#endif
