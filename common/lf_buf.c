#include "lf_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"

void lf_buf_init(lf_buf *b, size_t max_len)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max_len;
}

void lf_buf_free(lf_buf *b)
{
    lf_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void lf_buf_reset(lf_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int lf_buf_reserve(lf_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return LF_ELIMIT;
    size_t need = b->len + extra + 1; /* + terminator */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* Do not allocate far beyond what max allows. */
    if (cap > b->max + 1)
        cap = b->max + 1 > need ? b->max + 1 : need;
    char *p = lf_realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int lf_buf_append(lf_buf *b, const void *data, size_t len)
{
    int rc = lf_buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int lf_buf_append_str(lf_buf *b, const char *s)
{
    return lf_buf_append(b, s, strlen(s));
}

int lf_buf_append_char(lf_buf *b, char c)
{
    return lf_buf_append(b, &c, 1);
}

int lf_buf_vappendf(lf_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return lf_buf_append(b, small, (size_t)n);
    int rc = lf_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

void lf_buf_msgf(lf_buf *b, const char *fmt, ...)
{
    if (!b)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = lf_buf_vappendf(b, fmt, ap);
    (void)rc; /* text that does not fit is left out: see lf_buf.h */
    va_end(ap);
}

int lf_buf_appendf(lf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = lf_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void lf_buf_consume(lf_buf *b, size_t n)
{
    if (n >= b->len) {
        lf_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void lf_buf_truncate(lf_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

const char *lf_buf_cstr(const lf_buf *b)
{
    return b->data ? b->data : "";
}

char *lf_buf_steal(lf_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
