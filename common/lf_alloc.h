/* Allocation that the failure-injection point LF_FAIL_ALLOC can make fail. Storage and request paths
 * use these so that tests can fail each allocation in turn and check that every failure is handled.
 * They behave exactly like the libc functions otherwise. */
#ifndef LF_ALLOC_H
#define LF_ALLOC_H

#include <stddef.h>

void *lf_malloc(size_t size);
void *lf_calloc(size_t count, size_t size);
void *lf_realloc(void *ptr, size_t size);
char *lf_strdup(const char *s);
char *lf_strndup(const char *s, size_t n);
void *lf_memdup(const void *p, size_t n);
void lf_free(void *ptr);

#endif
