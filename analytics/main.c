/* logferry-analytics: entry point, commands (run, status, backfill) and the scheduling daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include "analytics_config.h"
#include "dashboard.h"
#include "dashboard_users.h"
#include "dictionary.h"
#include "jobs.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_preflight.h"
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

/* users add NAME [--role read|admin] | remove NAME | list: the dashboard's users file. The password
 * is the first line of standard input (asked for without echo on a terminal), never an argument
 * that other users could read in the process list. */
static int read_password(char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = false;
        }
    }
    char *got = fgets(buf, (int)size, stdin);
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got)
        return -ENODATA;
    size_t n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n')
        return -E2BIG; /* longer than we read: refused, never cut */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return n ? (int)n : -ENODATA;
}

static int cmd_users(lf_service *svc, int argc, char **argv)
{
    const struct lf_analytics_config *cfg = lf_service_config_data(svc);
    const char *usage = "usage: users add NAME [--role read|admin] | users remove NAME | users list";
    if (argc < 2)
        return usage_error(usage);
    lf_dash_users users;
    lf_buf err = LF_BUF_INIT(1024);
    if (lf_dash_users_load(cfg->dashboard_users_file, &users, &err) < 0) {
        fprintf(stderr, "logferry-analytics: %s\n", lf_buf_cstr(&err));
        lf_buf_free(&err);
        return 1;
    }
    lf_buf_free(&err);
    int status = 0;
    if (strcmp(argv[1], "list") == 0 && argc == 2) {
        for (size_t i = 0; i < users.n; i++)
            printf("%s\t%s\n", users.v[i].name, lf_dash_role_name(users.v[i].role));
    } else if (strcmp(argv[1], "add") == 0 && (argc == 3 || (argc == 5 && strcmp(argv[3], "--role") == 0))) {
        lf_dash_role role = argc == 5 ? lf_dash_role_parse(argv[4]) : LF_DASH_READ;
        char pw[1024];
        int n;
        if (role == LF_DASH_NONE || !lf_dash_user_name_ok(argv[2])) {
            status = usage_error("NAME is 1-64 of [A-Za-z0-9._@-]; --role is read or admin");
        } else if ((n = read_password(pw, sizeof pw)) < 0) {
            status = usage_error(n == -E2BIG ? "the password is longer than 1022 bytes"
                                             : "give the password on standard input");
        } else if (lf_dash_users_set(&users, argv[2], role, pw, (size_t)n) < 0 ||
                   lf_dash_users_save(cfg->dashboard_users_file, &users) < 0) {
            fprintf(stderr, "logferry-analytics: cannot write %s\n", cfg->dashboard_users_file);
            status = 1;
        } else {
            printf("%s: %s (%s)\n", cfg->dashboard_users_file, argv[2], lf_dash_role_name(role));
        }
        sodium_memzero(pw, sizeof pw);
    } else if (strcmp(argv[1], "remove") == 0 && argc == 3) {
        if (lf_dash_users_remove(&users, argv[2]) < 0) {
            fprintf(stderr, "logferry-analytics: no user %s\n", argv[2]);
            status = 1;
        } else if (lf_dash_users_save(cfg->dashboard_users_file, &users) < 0) {
            fprintf(stderr, "logferry-analytics: cannot write %s\n", cfg->dashboard_users_file);
            status = 1;
        } else {
            printf("%s: %s removed (signed out at once)\n", cfg->dashboard_users_file, argv[2]);
        }
    } else {
        status = usage_error(usage);
    }
    lf_dash_users_free(&users);
    return status;
}

/* dictionary: the analytics database's tables and columns with their meaning, as Markdown. */
static int cmd_dictionary(lf_service *svc, int argc, char **argv)
{
    (void)svc;
    (void)argv;
    if (argc != 1)
        return usage_error("usage: dictionary");
    return lf_analytics_dictionary_markdown(stdout) == 0 && fflush(stdout) == 0 ? 0 : 1;
}

/* What start-up needs (lf_service_def.preflight): TLS files that can be read, a receiver URL that
 * parses and the token file beside it. */
static void preflight(const void *config, lf_preflight *pf)
{
    const struct lf_analytics_config *c = config;
    lf_mysql_tls_preflight(pf, "mysql", "", &c->mysql_tls);
    if (c->source_host || c->source_socket)
        lf_mysql_tls_preflight(pf, "source", "", &c->source_tls);
    if (c->pipeline_receiver_url) {
        lf_preflight_url(pf, "pipeline", "receiver_url", c->pipeline_receiver_url);
        if (lf_preflight_require(pf, "pipeline", "receiver_token_file", c->pipeline_receiver_token_file,
                                 "the pipeline page reads the receiver with a token (scope read, or admin to "
                                 "redrive)"))
            lf_preflight_file(pf, "pipeline", "receiver_token_file", c->pipeline_receiver_token_file, false);
        if (c->pipeline_receiver_ca_file)
            lf_preflight_file(pf, "pipeline", "receiver_ca_file", c->pipeline_receiver_ca_file, false);
    }
}

/* What the daemon keeps between its start and stop hooks. */
typedef struct analytics_daemon {
    lf_dashboard *dashboard;
    lf_analytics_scheduler *scheduler;
} analytics_daemon;

static int daemon_start(lf_service *svc)
{
    analytics_daemon *d = lf_calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    int rc = lf_analytics_dashboard_start(svc, &d->dashboard);
    if (rc == 0)
        rc = lf_analytics_scheduler_start(svc, &d->scheduler);
    if (rc < 0) {
        lf_analytics_dashboard_free(d->dashboard);
        lf_free(d);
        return rc;
    }
    lf_service_set_user(svc, d);
    return 0;
}

static void daemon_stop(lf_service *svc)
{
    analytics_daemon *d = lf_service_user(svc);
    if (!d)
        return;
    lf_service_set_user(svc, NULL);
    lf_analytics_scheduler_stop(d->scheduler);
    lf_analytics_dashboard_free(d->dashboard);
    lf_free(d);
}

static const lf_service_command commands[] = {
    {"run", "JOB [--from YYYY-MM-DD --to YYYY-MM-DD]",
     "Runs one job now: the days changed since its watermark, or the given days.", cmd_run, .no_config = false},
    {"status", "", "Shows the jobs' watermarks and the last runs.", cmd_status, .no_config = false},
    {"backfill", "[JOB]", "Recomputes every day of the source for all jobs (or one).", cmd_backfill, .no_config = false},
    {"users", "add NAME [--role read|admin] | remove NAME | list",
     "Keeps the dashboard's users ([dashboard] users_file); add reads the password from standard input.",
     cmd_users, .no_config = false},
    {"dictionary", "", "Prints the analytics database's data dictionary (every table and column) as Markdown.",
     cmd_dictionary, .no_config = true},
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
    .preflight = preflight,
    .stop = daemon_stop,
};

int main(int argc, char **argv)
{
    return lf_service_main(&analytics, argc, argv);
}
