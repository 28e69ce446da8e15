#include "lf_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct lf_counter {
    _Atomic uint64_t value;
};

struct lf_gauge {
    _Atomic uint64_t bits; /* the double's bits, so that updates stay lock-free */
    lf_gauge_fn fn;        /* callback gauge when set */
    void *arg;
};

struct lf_histogram {
    double *bounds;
    size_t n;
    _Atomic uint64_t *buckets; /* n + 1 counts, not cumulative; the last is +Inf */
    _Atomic uint64_t sum_bits;
};

struct series {
    struct series *next;
    char *labels; /* NULL or the inside of the braces */
    union {
        struct lf_counter counter;
        struct lf_gauge gauge;
        struct lf_histogram histogram;
    } m;
};

struct family {
    struct family *next;
    char *name;
    char *help;
    enum metric_type type;
    struct series *series, **series_tail;
};

struct lf_metrics {
    pthread_mutex_t lock; /* registration and rendering; updates never take it */
    struct family *families, **families_tail;
};

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int lf_metrics_new(lf_metrics **out)
{
    lf_metrics *reg = lf_calloc(1, sizeof *reg);
    if (!reg)
        return -ENOMEM;
    pthread_mutex_init(&reg->lock, NULL);
    reg->families_tail = &reg->families;
    *out = reg;
    return 0;
}

static void free_series(struct family *f, struct series *s)
{
    if (f->type == M_HISTOGRAM) {
        lf_free(s->m.histogram.bounds);
        lf_free((void *)s->m.histogram.buckets);
    }
    lf_free(s->labels);
    lf_free(s);
}

void lf_metrics_free(lf_metrics *reg)
{
    if (!reg)
        return;
    struct family *f = reg->families;
    while (f) {
        struct family *fn = f->next;
        struct series *s = f->series;
        while (s) {
            struct series *sn = s->next;
            free_series(f, s);
            s = sn;
        }
        lf_free(f->name);
        lf_free(f->help);
        lf_free(f);
        f = fn;
    }
    pthread_mutex_destroy(&reg->lock);
    lf_free(reg);
}

static bool name_ok(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        if (!alpha && !(p > name && *p >= '0' && *p <= '9'))
            return false;
    }
    return true;
}

/* labels: name="value" pairs separated by commas, values escaped (\\ \" \n only). */
static bool labels_ok(const char *labels)
{
    const char *p = labels;
    if (!*p)
        return true;
    for (;;) {
        const char *start = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (p > start && *p >= '0' && *p <= '9'))
            p++;
        if (p == start || (p - start >= 2 && start[0] == '_' && start[1] == '_'))
            return false; /* empty, or reserved "__" prefix */
        if (p - start == 2 && memcmp(start, "le", 2) == 0)
            return false; /* reserved for histogram buckets */
        if (*p++ != '=' || *p++ != '"')
            return false;
        for (; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            }
        }
        p++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

int lf_metrics_escape_label(lf_buf *out, const char *value)
{
    int rc = 0;
    for (const char *p = value; *p && !rc; p++) {
        if (*p == '\\')
            rc = lf_buf_append_str(out, "\\\\");
        else if (*p == '"')
            rc = lf_buf_append_str(out, "\\\"");
        else if (*p == '\n')
            rc = lf_buf_append_str(out, "\\n");
        else
            rc = lf_buf_append_char(out, *p);
    }
    return rc;
}

/* Finds or adds the series; *created tells whether it is new. Caller holds the lock. */
static struct series *get_series(lf_metrics *reg, const char *name, const char *help, const char *labels,
                                 enum metric_type type, bool *created)
{
    *created = false;
    if (!name_ok(name) || (labels && !labels_ok(labels)))
        return NULL;
    if (labels && !*labels)
        labels = NULL;
    struct family *f = reg->families;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f && f->type != type)
        return NULL;
    if (f) {
        for (struct series *s = f->series; s; s = s->next)
            if ((!s->labels && !labels) || (s->labels && labels && strcmp(s->labels, labels) == 0))
                return s;
    }
    struct series *s = lf_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (labels && !(s->labels = lf_strdup(labels))) {
        lf_free(s);
        return NULL;
    }
    if (!f) {
        f = lf_calloc(1, sizeof *f);
        if (!f || !(f->name = lf_strdup(name)) || !(f->help = lf_strdup(help ? help : ""))) {
            if (f) {
                lf_free(f->name);
                lf_free(f);
            }
            lf_free(s->labels);
            lf_free(s);
            return NULL;
        }
        f->type = type;
        f->series_tail = &f->series;
        *reg->families_tail = f;
        reg->families_tail = &f->next;
    }
    *f->series_tail = s;
    f->series_tail = &s->next;
    *created = true;
    return s;
}

lf_counter *lf_metrics_counter(lf_metrics *reg, const char *name, const char *help, const char *labels)
{
    bool created;
    pthread_mutex_lock(&reg->lock);
    struct series *s = get_series(reg, name, help, labels, M_COUNTER, &created);
    pthread_mutex_unlock(&reg->lock);
    return s ? &s->m.counter : NULL;
}

lf_gauge *lf_metrics_gauge(lf_metrics *reg, const char *name, const char *help, const char *labels)
{
    bool created;
    pthread_mutex_lock(&reg->lock);
    struct series *s = get_series(reg, name, help, labels, M_GAUGE, &created);
    if (s && !created && s->m.gauge.fn)
        s = NULL; /* a callback gauge cannot be set */
    pthread_mutex_unlock(&reg->lock);
    return s ? &s->m.gauge : NULL;
}

int lf_metrics_gauge_fn(lf_metrics *reg, const char *name, const char *help, const char *labels,
                        lf_gauge_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    bool created;
    pthread_mutex_lock(&reg->lock);
    struct series *s = get_series(reg, name, help, labels, M_GAUGE, &created);
    int rc = 0;
    if (!s)
        rc = -EINVAL;
    else if (!created)
        rc = -EEXIST;
    else {
        s->m.gauge.fn = fn;
        s->m.gauge.arg = arg;
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

lf_histogram *lf_metrics_histogram(lf_metrics *reg, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
            return NULL;
    bool created;
    pthread_mutex_lock(&reg->lock);
    struct series *s = get_series(reg, name, help, labels, M_HISTOGRAM, &created);
    if (s && created) {
        struct lf_histogram *h = &s->m.histogram;
        h->bounds = lf_malloc((n ? n : 1) * sizeof *h->bounds);
        h->buckets = lf_calloc(n + 1, sizeof *h->buckets);
        if (!h->bounds || !h->buckets) {
            /* unlink the half-made series again (it is the tail of its family) */
            struct family *f = reg->families;
            while (f && strcmp(f->name, name) != 0)
                f = f->next;
            struct series **pp = &f->series;
            while (*pp != s)
                pp = &(*pp)->next;
            *pp = NULL;
            f->series_tail = pp;
            free_series(f, s);
            s = NULL;
        } else {
            if (n)
                memcpy(h->bounds, bounds, n * sizeof *bounds);
            h->n = n;
        }
    } else if (s) {
        /* the same series registered again must have the same buckets */
        struct lf_histogram *h = &s->m.histogram;
        if (h->n != n || (n && memcmp(h->bounds, bounds, n * sizeof *bounds) != 0))
            s = NULL;
    }
    pthread_mutex_unlock(&reg->lock);
    return s ? &s->m.histogram : NULL;
}

void lf_counter_add(lf_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t lf_counter_value(const lf_counter *c)
{
    return atomic_load_explicit(&((lf_counter *)c)->value, memory_order_relaxed);
}

void lf_gauge_set(lf_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void lf_gauge_add(lf_gauge *g, double delta)
{
    atomic_add_double(&g->bits, delta);
}

double lf_gauge_value(const lf_gauge *g)
{
    if (g->fn)
        return g->fn(g->arg);
    return bitsd(atomic_load_explicit(&((lf_gauge *)g)->bits, memory_order_relaxed));
}

void lf_histogram_observe(lf_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n && !(v <= h->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* Prometheus floats: shortest text that reads back the same, +Inf, -Inf, NaN. */
static int append_double(lf_buf *out, double d)
{
    if (isnan(d))
        return lf_buf_append_str(out, "NaN");
    if (isinf(d))
        return lf_buf_append_str(out, d > 0 ? "+Inf" : "-Inf");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return lf_buf_append_str(out, tmp);
}

static int append_help(lf_buf *out, const char *help)
{
    int rc = 0;
    for (const char *p = help; *p && !rc; p++) {
        if (*p == '\\')
            rc = lf_buf_append_str(out, "\\\\");
        else if (*p == '\n')
            rc = lf_buf_append_str(out, "\\n");
        else
            rc = lf_buf_append_char(out, *p);
    }
    return rc;
}

static int render_labels(lf_buf *out, const char *labels, const char *le)
{
    if (!labels && !le)
        return 0;
    int rc = lf_buf_append_char(out, '{');
    if (!rc && labels)
        rc = lf_buf_append_str(out, labels);
    if (!rc && le)
        rc = lf_buf_appendf(out, "%sle=\"%s\"", labels ? "," : "", le);
    return rc ? rc : lf_buf_append_char(out, '}');
}

static int render_histogram(lf_buf *out, const char *name, const struct series *s)
{
    const struct lf_histogram *h = &s->m.histogram;
    uint64_t cumulative = 0;
    int rc = 0;
    /* read count after buckets so that a concurrent observe never shows count < +Inf bucket */
    for (size_t i = 0; i <= h->n && !rc; i++) {
        cumulative += atomic_load_explicit(&((struct lf_histogram *)h)->buckets[i], memory_order_relaxed);
        lf_buf le = LF_BUF_INIT(64);
        rc = i < h->n ? append_double(&le, h->bounds[i]) : lf_buf_append_str(&le, "+Inf");
        rc = rc ? rc : lf_buf_appendf(out, "%s_bucket", name);
        if (!rc)
            rc = render_labels(out, s->labels, lf_buf_cstr(&le));
        if (!rc)
            rc = lf_buf_appendf(out, " %" PRIu64 "\n", cumulative);
        lf_buf_free(&le);
    }
    if (!rc)
        rc = lf_buf_appendf(out, "%s_sum", name);
    if (!rc)
        rc = render_labels(out, s->labels, NULL);
    if (!rc)
        rc = lf_buf_append_char(out, ' ');
    if (!rc)
        rc = append_double(out, bitsd(atomic_load_explicit(&((struct lf_histogram *)h)->sum_bits,
                                                          memory_order_relaxed)));
    if (!rc)
        rc = lf_buf_appendf(out, "\n%s_count", name);
    if (!rc)
        rc = render_labels(out, s->labels, NULL);
    /* the count is the +Inf bucket, so that both always agree in one scrape */
    if (!rc)
        rc = lf_buf_appendf(out, " %" PRIu64 "\n", cumulative);
    return rc;
}

int lf_metrics_render(lf_metrics *reg, lf_buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    for (struct family *f = reg->families; f && !rc; f = f->next) {
        if (!f->series)
            continue;
        rc = lf_buf_appendf(out, "# HELP %s ", f->name);
        if (!rc)
            rc = append_help(out, f->help);
        if (!rc)
            rc = lf_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (struct series *s = f->series; s && !rc; s = s->next) {
            if (f->type == M_HISTOGRAM) {
                rc = render_histogram(out, f->name, s);
                continue;
            }
            rc = lf_buf_append_str(out, f->name);
            if (!rc)
                rc = render_labels(out, s->labels, NULL);
            if (!rc)
                rc = lf_buf_append_char(out, ' ');
            if (!rc && f->type == M_COUNTER)
                rc = lf_buf_appendf(out, "%" PRIu64, lf_counter_value(&s->m.counter));
            else if (!rc)
                rc = append_double(out, lf_gauge_value(&s->m.gauge));
            if (!rc)
                rc = lf_buf_append_char(out, '\n');
        }
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}
