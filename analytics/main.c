/* logferry-analytics: entry point, commands (run, status, backfill) and the scheduling daemon. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "analytics_config.h"
#include "dashboard.h"
#include "jobs.h"
#include "lf_error.h"
#include "lf_progress.h"
#include "lf_service.h"
#include "scheduler.h"

static int usage_error(const char *msg)
{
    fprintf(stderr, "logferry-analytics: %s\n", msg);
    return 2;
}

/* run JOB [--from DAY --to DAY] */
static int cmd_run(lf_service *svc, int argc, char **argv)
{
    const struct lf_analytics_config *cfg = lf_service_config_data(svc);
    const char *job = NULL, *from = NULL, *to = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (!job && argv[i][0] != '-')
            job = argv[i];
        else
            return usage_error("usage: run JOB [--from YYYY-MM-DD --to YYYY-MM-DD]");
    }
    if (!job || (!from) != (!to))
        return usage_error("usage: run JOB [--from YYYY-MM-DD --to YYYY-MM-DD]");
    if (!lf_analytics_job_exists(cfg, job)) {
        fprintf(stderr, "logferry-analytics: no job named %s\n", job);
        return 2;
    }
    lf_analytics a;
    if (lf_analytics_open(&a, cfg) != 0)
        return 1;
    long long rows = 0;
    int rc = lf_analytics_run(&a, job, from, to, false, &rows);
    lf_analytics_close(&a);
    if (rc == 1) {
        printf("%s: skipped (running elsewhere)\n", job);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "logferry-analytics: %s: %s\n", job, lf_strerror(rc));
        return 1;
    }
    printf("%s: ok, %lld rows\n", job, rows);
    return 0;
}

/* backfill [JOB]: every day in the source, for one job or all of them. */
/* One progress line per job, in days (a backfill of years of data takes a while). */
struct backfill_progress {
    lf_progress p;
    bool started;
};

static void backfill_day(void *arg, const char *job, size_t done, size_t total)
{
    struct backfill_progress *bp = arg;
    if (!bp->started) {
        lf_progress_start(&bp->p, stderr, isatty(STDERR_FILENO), job, "", total, lf_progress_now_ms());
        bp->started = true;
    }
    lf_progress_update(&bp->p, done, lf_progress_now_ms());
}

static int cmd_backfill(lf_service *svc, int argc, char **argv)
{
    const struct lf_analytics_config *cfg = lf_service_config_data(svc);
    if (argc > 2 || (argc == 2 && !lf_analytics_job_exists(cfg, argv[1])))
        return usage_error("usage: backfill [JOB]");
    lf_analytics a;
    if (lf_analytics_open(&a, cfg) != 0)
        return 1;
    struct backfill_progress bp = {.started = false};
    a.on_day = backfill_day;
    a.on_day_arg = &bp;
    int status = 0;
    size_t n = 4 + cfg->n_jobs;
    for (size_t i = 0; i < n; i++) {
        const char *job = i < 4 ? lf_analytics_builtin_jobs[i] : cfg->jobs[i - 4].name;
        if (argc == 2 && strcmp(argv[1], job) != 0)
            continue;
        long long rows = 0;
        bp.started = false;
        int rc = lf_analytics_run(&a, job, NULL, NULL, true, &rows);
        if (bp.started)
            lf_progress_end(&bp.p, lf_progress_now_ms());
        if (rc < 0)
            status = 1;
        printf("%s: %s, %lld rows\n", job, rc < 0 ? "failed" : rc == 1 ? "skipped" : "ok", rows);
    }
    lf_analytics_close(&a);
    return status;
}

static int print_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)arg;
    (void)len;
    for (unsigned i = 0; i < n; i++)
        printf("%s%s", i ? "\t" : "", v[i] ? v[i] : "-");
    printf("\n");
    return 0;
}

static int cmd_status(lf_service *svc, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return usage_error("usage: status");
    lf_analytics a;
    if (lf_analytics_open(&a, lf_service_config_data(svc)) != 0)
        return 1;
    printf("watermarks (job, parsed_until, updated_at):\n");
    int rc = lf_mysql_query(a.dst, "SELECT job, parsed_until, updated_at FROM job_watermarks ORDER BY job",
                            print_row, NULL);
    printf("last runs (id, job, window_from, window_to, rows, started_at, duration_ms, status, host, "
           "error):\n");
    if (rc >= 0)
        rc = lf_mysql_query(a.dst,
                            "SELECT id, job, window_from, window_to, `rows`, started_at, duration_ms, "
                            "status, host, error FROM job_runs ORDER BY id DESC LIMIT 20",
                            print_row, NULL);
    if (rc < 0)
        fprintf(stderr, "logferry-analytics: %s\n", lf_mysql_error(a.dst));
    lf_analytics_close(&a);
    return rc < 0 ? 1 : 0;
}

static int daemon_start(lf_service *svc)
{
    int rc = lf_analytics_dashboard_routes(svc);
    if (rc < 0)
        return rc;
    return lf_analytics_scheduler_start(svc);
}

static const lf_service_command commands[] = {
    {"run", "JOB [--from YYYY-MM-DD --to YYYY-MM-DD]",
     "Runs one job now: the days changed since its watermark, or the given days.", cmd_run, .no_config = false},
    {"status", "", "Shows the jobs' watermarks and the last runs.", cmd_status, .no_config = false},
    {"backfill", "[JOB]", "Recomputes every day of the source for all jobs (or one).", cmd_backfill, .no_config = false},
};

static const lf_service_def analytics = {
    .program = "logferry-analytics",
    .summary = "Scheduled, incremental, idempotent loaders from the parsed tables into the analytics "
               "database.",
    .description = "Each job ([job.NAME], and the built-in ones) reads the parsed events of the days changed since "
                   "its watermark and writes those days into the analytics database, on its cron schedule "
                   "(run, status and backfill do the same by hand). The dashboard is served on the HTTP port "
                   "([http] listen).",
    .section = "8",
    .state_dir = "/var/lib/logferry/analytics",
    .config = &lf_analytics_config_table,
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .start = daemon_start,
    .stop = lf_analytics_scheduler_stop,
};

int main(int argc, char **argv)
{
    return lf_service_main(&analytics, argc, argv);
}
