#include "site_figures.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lf_alloc.h"
#include "lf_log.h"
#include "lf_sign.h"

#define PENDING_MAX 1024 /* distinct (site, reason) pairs between two flushes; past it, flush now */

struct pending {
    char site[LF_SIGN_SITE_MAX + 1];
    char reason[32];
    uint64_t count, last_ms;
};

/* One log budget: a site name (or "" for the shared one) and its current minute. */
struct budget {
    char site[LF_SIGN_SITE_MAX + 1];
    uint64_t window_start; /* monotonic ms */
    unsigned logged;
    uint64_t left_out;
};

struct lf_site_figures {
    lf_metrics *metrics;
    lf_index *index;
    struct pending pending[PENDING_MAX];
    size_t n_pending;
    struct budget budgets[LF_SITE_LOG_SITES];
    size_t n_budgets;
    struct budget shared; /* names past LF_SITE_LOG_SITES, and uploads that named no site */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static lf_gauge *last_upload_gauge(lf_metrics *m, const char *site)
{
    char labels[96];
    snprintf(labels, sizeof labels, "site=\"%s\"", site);
    return lf_metrics_gauge(m, "lf_receiver_site_last_upload_timestamp_seconds",
                            "Unix time of the last new session stored from the site (from the index at start)",
                            labels);
}

static int init_gauge(void *arg, const char *site, uint64_t sessions, uint64_t bytes, uint64_t last_ms)
{
    (void)sessions;
    (void)bytes;
    lf_site_figures *f = arg;
    lf_gauge *g = last_upload_gauge(f->metrics, site);
    if (g)
        lf_gauge_set(g, (double)(last_ms / 1000));
    return 0;
}

int lf_site_figures_new(lf_metrics *metrics, lf_index *index, lf_site_figures **out)
{
    lf_site_figures *f = lf_calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->metrics = metrics;
    f->index = index;
    int rc = lf_index_site_uploads(index, init_gauge, f);
    if (rc != 0) {
        lf_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void lf_site_figures_free(lf_site_figures *f)
{
    if (!f)
        return;
    if (lf_site_figures_flush(f) != 0)
        LF_ERROR("sites", "%zu refusal counts could not be written to the index", f->n_pending);
    lf_free(f);
}

void lf_site_figures_stored(lf_site_figures *f, const char *site, uint64_t bytes)
{
    char labels[96];
    snprintf(labels, sizeof labels, "site=\"%s\"", site);
    lf_counter *c = lf_metrics_counter(f->metrics, "lf_receiver_site_sessions_total",
                                       "New sessions stored, by site", labels);
    if (c)
        lf_counter_inc(c);
    c = lf_metrics_counter(f->metrics, "lf_receiver_site_stored_bytes_total",
                           "Bytes of new sessions stored (plaintext zip), by site", labels);
    if (c)
        lf_counter_add(c, bytes);
    lf_gauge *g = last_upload_gauge(f->metrics, site);
    if (g)
        lf_gauge_set(g, (double)(wall_ms() / 1000));
}

static void say_left_out(const struct budget *b)
{
    if (b->left_out)
        LF_WARN("upload", "refused uploads of %s: %llu more in the last minute not logged "
                          "(lf_receiver_site_refusals_total counts them all)",
                b->site[0] ? b->site : "other sites", (unsigned long long)b->left_out);
}

/* Rolls b into the current minute when its own has ended. */
static void roll(struct budget *b, uint64_t now)
{
    if (now - b->window_start >= LF_SITE_LOG_WINDOW_MS) {
        say_left_out(b);
        b->window_start = now;
        b->logged = 0;
        b->left_out = 0;
    }
}

static struct budget *budget_of(lf_site_figures *f, const char *site, uint64_t now)
{
    if (site) {
        for (size_t i = 0; i < f->n_budgets; i++)
            if (strcmp(f->budgets[i].site, site) == 0)
                return &f->budgets[i];
        if (f->n_budgets < LF_SITE_LOG_SITES) {
            struct budget *b = &f->budgets[f->n_budgets++];
            memset(b, 0, sizeof *b);
            snprintf(b->site, sizeof b->site, "%s", site);
            b->window_start = now;
            return b;
        }
    }
    return &f->shared;
}

static void count_pending(lf_site_figures *f, const char *site, const char *reason)
{
    uint64_t now = wall_ms();
    for (size_t i = 0; i < f->n_pending; i++) {
        struct pending *p = &f->pending[i];
        if (strcmp(p->site, site) == 0 && strcmp(p->reason, reason) == 0) {
            p->count++;
            p->last_ms = now;
            return;
        }
    }
    if (f->n_pending == PENDING_MAX && lf_site_figures_flush(f) != 0) {
        /* the index fails: keep counting in /metrics rather than grow, and say what is lost */
        LF_ERROR("sites", "the index takes no refusal counts: %zu (site, reason) counts are not kept durably "
                          "(lf_receiver_site_refusals_total still has them)",
                 f->n_pending);
        f->n_pending = 0;
    }
    struct pending *p = &f->pending[f->n_pending++];
    snprintf(p->site, sizeof p->site, "%s", site);
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    p->count = 1;
    p->last_ms = now;
}

void lf_site_figures_refused(lf_site_figures *f, const char *site, bool registered, const char *id, int status,
                             const char *reason, const char *message)
{
    const char *as = registered && site ? site : LF_SITE_UNREGISTERED;
    char labels[160];
    snprintf(labels, sizeof labels, "site=\"%s\",reason=\"%s\"", as, reason);
    lf_counter *c = lf_metrics_counter(f->metrics, "lf_receiver_site_refusals_total",
                                       "Uploads refused, by site (registered ones; others are \"(unregistered)\") "
                                       "and reason",
                                       labels);
    if (c)
        lf_counter_inc(c);
    count_pending(f, as, reason);

    /* the name comes from a parsed signature header ([a-z0-9._-]{1,64}) or is absent */
    uint64_t now = mono_ms();
    struct budget *b = budget_of(f, site, now);
    roll(b, now);
    if (b->logged >= LF_SITE_LOG_BURST) {
        b->left_out++;
        return;
    }
    b->logged++;
    LF_WARN("upload", "refused upload: site %s%s, session %s: %d %s (%s)%s", site ? site : "(none given)",
            site && !registered ? " (not registered)" : "", id ? id : "(invalid id)", status, reason, message,
            b->logged == LF_SITE_LOG_BURST ? "; further refusals of this site are not logged for a minute" : "");
}

int lf_site_figures_flush(lf_site_figures *f)
{
    uint64_t now = mono_ms();
    for (size_t i = 0; i < f->n_budgets; i++)
        roll(&f->budgets[i], now);
    roll(&f->shared, now);
    if (f->n_pending == 0)
        return 0;
    lf_index_refusal rows[PENDING_MAX];
    for (size_t i = 0; i < f->n_pending; i++)
        rows[i] = (lf_index_refusal){f->pending[i].site, f->pending[i].reason, f->pending[i].count,
                                     f->pending[i].last_ms};
    int rc = lf_index_add_refusals(f->index, rows, f->n_pending);
    if (rc == 0)
        f->n_pending = 0;
    return rc;
}
