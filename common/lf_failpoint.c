#include "lf_failpoint.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct fail_point {
    atomic_bool armed;
    atomic_bool sticky;
    atomic_uint_fast64_t nth;
    atomic_uint_fast64_t calls;
};

static struct fail_point points[LF_FAIL_KINDS];

bool lf_fail_hit(enum lf_fail_kind kind)
{
    struct fail_point *p = &points[kind];
    if (!atomic_load_explicit(&p->armed, memory_order_relaxed))
        return false;
    uint64_t n = atomic_fetch_add(&p->calls, 1) + 1;
    uint64_t nth = atomic_load(&p->nth);
    return n == nth || (n > nth && atomic_load(&p->sticky));
}

void lf_fail_arm(enum lf_fail_kind kind, uint64_t nth, bool sticky)
{
    struct fail_point *p = &points[kind];
    atomic_store(&p->armed, false);
    atomic_store(&p->calls, 0);
    atomic_store(&p->nth, nth);
    atomic_store(&p->sticky, sticky);
    atomic_store(&p->armed, nth > 0);
}

void lf_fail_disarm(enum lf_fail_kind kind)
{
    atomic_store(&points[kind].armed, false);
}

uint64_t lf_fail_calls(enum lf_fail_kind kind)
{
    return atomic_load(&points[kind].calls);
}

void lf_fail_from_env(void)
{
    static const char *names[LF_FAIL_KINDS] = {"LF_FAIL_ALLOC", "LF_FAIL_WRITE", "LF_FAIL_FSYNC", "LF_FAIL_PUBLISH"};
    for (int k = 0; k < LF_FAIL_KINDS; k++) {
        const char *v = getenv(names[k]);
        if (!v || !*v)
            continue;
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        lf_fail_arm((enum lf_fail_kind)k, n, strcmp(end, "+") == 0);
    }
}
