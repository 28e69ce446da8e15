/* The analytics jobs: built-in (daily_usage, feature_usage, errors, retention) and custom SQL jobs,
 * each run incrementally from its watermark, one day partition per transaction, under a per-job
 * MySQL lock, with a row in job_runs (docs/analytics.md). */
#ifndef LF_ANALYTICS_JOBS_H
#define LF_ANALYTICS_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "analytics_config.h"
#include "lf_mysql.h"

typedef struct lf_analytics {
    const struct lf_analytics_config *cfg;
    lf_mysql *src; /* the parsed tables (source_database) */
    lf_mysql *dst; /* the analytics tables (target_database) */
    /* Optional: called after each day a job recomputed (done of total days), for progress. */
    void (*on_day)(void *arg, const char *job, size_t done, size_t total);
    void *on_day_arg;
} lf_analytics;

extern const char *const lf_analytics_builtin_jobs[]; /* NULL-terminated */

/* The connection options of the target ([mysql], source false) or of the source ([source], falling
 * back to [mysql] for what it leaves unset). Strings point into cfg. */
void lf_analytics_mysql_options(const struct lf_analytics_config *cfg, bool source, lf_mysql_options *o);

/* Connects both sides and applies the target's migrations. 0 or a negative code. */
int lf_analytics_open(lf_analytics *a, const struct lf_analytics_config *cfg);
void lf_analytics_close(lf_analytics *a);

/* true when name is a built-in or a configured [job.NAME]. */
bool lf_analytics_job_exists(const struct lf_analytics_config *cfg, const char *name);

/* Runs one job. from/to ("YYYY-MM-DD", both or neither): recompute exactly those days (the
 * watermark is left alone); all: every day present in the source; else the days of sessions parsed
 * since the watermark. Returns 0 when it ran, 1 when another process holds the job's lock (skipped),
 * or a negative code (the run is recorded as failed). *rows (may be NULL) gets rows written. */
int lf_analytics_run(lf_analytics *a, const char *job, const char *from, const char *to, bool all,
                     long long *rows);

/* Nearest-rank percentile of sorted values: the value at rank ceil(p/100 * n) (1-based). n > 0. */
long long lf_analytics_percentile(const long long *sorted, size_t n, unsigned p);

#endif
