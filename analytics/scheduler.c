/* Daemon scheduler (scheduler.h). */
#include "scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics_config.h"
#include "cron.h"
#include "jobs.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"

typedef struct sched_job {
    char name[128];
    lf_cron cron;
    time_t due;
} sched_job;

typedef struct scheduler {
    lf_service *svc;
    uv_timer_t timer;
    uv_work_t work;
    sched_job *jobs;
    size_t n;
    sched_job *running; /* NULL when idle */
    int result;
    bool stopping;
} scheduler;

static int last_ok_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    (void)len;
    if (n > 0 && v[0])
        *(time_t *)arg = (time_t)strtoll(v[0], NULL, 10);
    return 0;
}

/* Catch-up: the first due time is the next scheduled time after the last successful run; when that
 * is already past (the daemon was down then), the job runs at once. A job that never ran runs now. */
static void initial_due(scheduler *s, const struct lf_analytics_config *cfg)
{
    lf_analytics a;
    time_t now = time(NULL);
    bool open = lf_analytics_open(&a, cfg) == 0;
    for (size_t i = 0; i < s->n; i++) {
        time_t last = 0;
        if (open) {
            char sql[512];
            snprintf(sql, sizeof sql,
                     "SELECT UNIX_TIMESTAMP(MAX(started_at)) FROM job_runs WHERE job = '%s' AND "
                     "status = 'ok'",
                     s->jobs[i].name); /* names come from the configuration: [A-Za-z0-9_.-] */
            if (lf_mysql_query(a.dst, sql, last_ok_row, &last) < 0)
                LF_WARN("analytics", "job %s: cannot read its last run (%s); running it now", s->jobs[i].name,
                        lf_mysql_error(a.dst));
        }
        time_t next = last ? lf_cron_next(&s->jobs[i].cron, last) : now;
        s->jobs[i].due = next <= now ? now : next;
        if (next < now)
            LF_INFO("analytics", "job %s missed a scheduled run while down: catching up", s->jobs[i].name);
    }
    if (open)
        lf_analytics_close(&a);
}

static void work_run(uv_work_t *w)
{
    scheduler *s = w->data;
    lf_analytics a;
    s->result = lf_analytics_open(&a, lf_service_config_data(s->svc));
    if (s->result == 0) {
        s->result = lf_analytics_run(&a, s->running->name, NULL, NULL, false, NULL);
        lf_analytics_close(&a);
    }
}

static void pick(scheduler *s);

static void on_timer_closed(uv_handle_t *h)
{
    scheduler *s = h->data;
    lf_free(s->jobs);
    lf_free(s);
}

static void work_done(uv_work_t *w, int status)
{
    scheduler *s = w->data;
    (void)status;
    sched_job *j = s->running;
    s->running = NULL;
    if (s->result < 0)
        LF_WARN("analytics", "job %s: %s", j->name, lf_strerror(s->result));
    /* Next time strictly after now, so a long run never queues a burst of runs behind it. */
    j->due = lf_cron_next(&j->cron, time(NULL));
    if (s->stopping)
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    else
        pick(s);
}

static void pick(scheduler *s)
{
    if (s->running || s->stopping)
        return;
    time_t now = time(NULL);
    sched_job *best = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->jobs[i].due != (time_t)-1 && s->jobs[i].due <= now && (!best || s->jobs[i].due < best->due))
            best = &s->jobs[i];
    if (!best)
        return;
    s->running = best;
    s->work.data = s;
    if (uv_queue_work(lf_service_loop(s->svc), &s->work, work_run, work_done) != 0)
        s->running = NULL;
}

static void on_tick(uv_timer_t *t)
{
    pick(t->data);
}

int lf_analytics_scheduler_start(lf_service *svc, lf_analytics_scheduler **out)
{
    const struct lf_analytics_config *cfg = lf_service_config_data(svc);
    scheduler *s = lf_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->svc = svc;
    /* The schedules are read in this zone; localtime_r follows TZ. */
    if (cfg->timezone && *cfg->timezone) {
        setenv("TZ", cfg->timezone, 1);
        tzset();
    }
    s->n = 4 + cfg->n_jobs;
    s->jobs = lf_calloc(s->n, sizeof *s->jobs);
    if (!s->jobs) {
        lf_free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        const char *name = i < 4 ? lf_analytics_builtin_jobs[i] : cfg->jobs[i - 4].name;
        const char *expr = i < 4 ? cfg->schedule : cfg->jobs[i - 4].schedule;
        snprintf(s->jobs[i].name, sizeof s->jobs[i].name, "%s", name);
        if (lf_cron_parse(expr, &s->jobs[i].cron) != 0) {
            LF_ERROR("analytics", "job %s: bad schedule '%s'", name, expr);
            lf_free(s->jobs);
            lf_free(s);
            return -EINVAL;
        }
    }
    initial_due(s, cfg);
    uv_timer_init(lf_service_loop(svc), &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 0, 1000);
    *out = s;
    LF_INFO("analytics", "scheduler: %zu job(s), time zone %s", s->n, cfg->timezone);
    return 0;
}

void lf_analytics_scheduler_stop(lf_analytics_scheduler *s)
{
    if (!s)
        return;
    s->stopping = true;
    /* A run in progress finishes on its thread (its partition commits or not as a whole); the loop
     * waits for its work_done before exiting. work_done reads s, so then it closes the timer. */
    uv_timer_stop(&s->timer);
    if (!s->running)
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
