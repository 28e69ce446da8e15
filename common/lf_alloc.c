#include "lf_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "lf_failpoint.h"

void *lf_malloc(size_t size)
{
    return lf_fail_hit(LF_FAIL_ALLOC) ? NULL : malloc(size ? size : 1);
}

void *lf_calloc(size_t count, size_t size)
{
    return lf_fail_hit(LF_FAIL_ALLOC) ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *lf_realloc(void *ptr, size_t size)
{
    return lf_fail_hit(LF_FAIL_ALLOC) ? NULL : realloc(ptr, size ? size : 1);
}

char *lf_strdup(const char *s)
{
    return lf_memdup(s, strlen(s) + 1);
}

char *lf_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = lf_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void *lf_memdup(const void *p, size_t n)
{
    void *q = lf_malloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

void lf_free(void *ptr)
{
    free(ptr);
}
