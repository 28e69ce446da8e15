/* logferry-analytics's configuration table (also read by tools/logferry-config-docs). */
#include "analytics_config.h"

#include <stddef.h>

#include "cron.h"
#include "lf_http_client.h"

#define F(field) offsetof(struct lf_analytics_config, field)

const char *const lf_analytics_cookie_secure_values[] = {"auto", "always", "never", NULL};

static int check_schedule(const void *field, lf_buf *err)
{
    const char *s = *(char *const *)field;
    lf_cron c;
    if (!s)
        return 0;
    int rc = lf_cron_parse(s, &c);
    if (rc)
        lf_buf_msgf(err, "not a 5-field cron expression (minute hour day-of-month month "
                               "day-of-week, with *, lists, ranges and steps)");
    return rc;
}

static const lf_config_option analytics_options[] = {
    LF_SERVICE_COMMON_OPTIONS("127.0.0.1:8443"),
    {"mysql", "host", LF_CFG_STRING, "127.0.0.1", F(mysql_host),
     .description = "MySQL/MariaDB server of the analytics database (ignored when socket is set)."},
    {"mysql", "port", LF_CFG_UINT, "3306", F(mysql_port), .min = 1, .max = 65535,
     .description = "MySQL/MariaDB server port."},
    {"mysql", "socket", LF_CFG_STRING, NULL, F(mysql_socket),
     .description = "Unix socket of the server, used instead of host and port when set."},
    {"mysql", "user", LF_CFG_STRING, "logferry", F(mysql_user), .description = "MySQL user."},
    {"mysql", "password", LF_CFG_STRING, NULL, F(mysql_password), .flags = LF_CFG_SECRET,
     .description = "MySQL password."},
    LF_MYSQL_TLS_OPTIONS("mysql", "", F(mysql_tls), 0),
    {"source", "host", LF_CFG_STRING, NULL, F(source_host),
     .description = "Server of the parsed tables when it is not the [mysql] one. Unset (and socket "
                    "unset): the jobs read from the [mysql] server, with its TLS settings ([source] ssl_* "
                    "apply only to a server of its own)."},
    {"source", "port", LF_CFG_UINT, "3306", F(source_port), .min = 1, .max = 65535,
     .description = "Port of the source server."},
    {"source", "socket", LF_CFG_STRING, NULL, F(source_socket),
     .description = "Unix socket of the source server."},
    {"source", "user", LF_CFG_STRING, NULL, F(source_user),
     .description = "User on the source server (default: [mysql] user)."},
    {"source", "password", LF_CFG_STRING, NULL, F(source_password), .flags = LF_CFG_SECRET,
     .description = "Password on the source server (default: [mysql] password)."},
    LF_MYSQL_TLS_OPTIONS("source", "", F(source_tls), 0),
    {"analytics", "source_database", LF_CFG_STRING, "logferry", F(source_database),
     .description = "Database the parser loads events into, read by the jobs."},
    {"analytics", "target_database", LF_CFG_STRING, "logferry_analytics", F(target_database),
     .description = "Database of the analytics tables (Tableau, dashboard), the run history and the "
                    "jobs' lock."},
    {"analytics", "schedule", LF_CFG_STRING, "10 * * * *", F(schedule), .validate = check_schedule,
     .description = "When the daemon runs the built-in jobs: a 5-field cron expression (minute hour "
                    "day-of-month month day-of-week; *, lists, ranges, steps)."},
    {"analytics", "timezone", LF_CFG_STRING, "UTC", F(timezone),
     .description = "Time zone (TZ database name, e.g. Europe/Paris) the schedules are read in. Days "
                    "of the analytics tables are UTC days whatever this is."},
    {"dashboard", "users_file", LF_CFG_STRING, "/var/lib/logferry/analytics/dashboard-users",
     F(dashboard_users_file),
     .description = "Who may sign in to the dashboard (NAME ROLE HASH lines, roles read and admin), kept "
                    "with `logferry-analytics users add|remove|list`; re-read when it changes."},
    {"dashboard", "anonymous", LF_CFG_BOOL, "false", F(dashboard_anonymous),
     .description = "true: the dashboard and its API are readable without signing in (re-running jobs "
                    "and redriving still need an admin). Only for a dashboard no one else can reach."},
    {"dashboard", "session_lifetime", LF_CFG_DURATION, "12h", F(dashboard_session_lifetime), .min = 60000,
     .max = 30ull * 86400000,
     .description = "How long a sign-in lasts. Sessions live in the daemon's memory: a restart signs "
                    "everyone out."},
    {"dashboard", "cookie_secure", LF_CFG_ENUM, "auto", F(dashboard_cookie_secure),
     .enum_values = lf_analytics_cookie_secure_values,
     .description = "Secure flag of the session cookie: auto (when the proxy says the request came over "
                    "TLS with X-Forwarded-Proto: https), always, or never."},
    {"pipeline", "receiver_url", LF_CFG_STRING, NULL, F(pipeline_receiver_url), .validate = lf_http_url_validate,
     .description = "The receiver whose uploads per site, queue and dead letters the pipeline page shows "
                    "(unset: the page shows the parser and analytics stages only)."},
    {"pipeline", "receiver_token_file", LF_CFG_STRING, NULL, F(pipeline_receiver_token_file),
     .description = "File holding a receiver token: scope read for the figures, admin to redrive dead "
                    "letters from the page."},
    {"pipeline", "receiver_ca_file", LF_CFG_STRING, NULL, F(pipeline_receiver_ca_file),
     .description = "CA certificates the receiver's TLS certificate is checked against (default: the "
                    "system's)."},
    {"pipeline", "queue", LF_CFG_STRING, "sessions", F(pipeline_queue),
     .description = "The receiver's sessions queue (its [queue] sessions_queue)."},
};

static const lf_config_option job_options[] = {
    {"job.NAME", "sql_file", LF_CFG_STRING, NULL, offsetof(struct lf_analytics_job_section, sql_file),
     .flags = LF_CFG_REQUIRED,
     .description = "SQL statements (separated by ';' at line ends) run in one transaction on the "
                    "target server; :from_day and :to_day are replaced by the window's first and last "
                    "day as quoted dates."},
    {"job.NAME", "schedule", LF_CFG_STRING, "10 * * * *",
     offsetof(struct lf_analytics_job_section, schedule), .validate = check_schedule,
     .description = "When the daemon runs the job (5-field cron expression)."},
};

static const lf_config_section_table analytics_sections[] = {
    {.prefix = "job",
     .options = job_options,
     .n_options = sizeof job_options / sizeof job_options[0],
     .element_size = sizeof(struct lf_analytics_job_section),
     .name_offset = offsetof(struct lf_analytics_job_section, name),
     .array_offset = F(jobs),
     .count_offset = F(n_jobs),
     .max_count = 64,
     .description = "A custom job: an operator's SQL file run for the days changed since its last "
                    "run, with history and lock like the built-in jobs."},
};

const lf_config_table lf_analytics_config_table = {
    .program = "logferry-analytics",
    .default_path = "/etc/logferry/analytics.conf",
    .options = analytics_options,
    .n_options = sizeof analytics_options / sizeof analytics_options[0],
    .sections = analytics_sections,
    .n_sections = 1,
    .target_size = sizeof(struct lf_analytics_config),
    .description = "Scheduled, incremental, idempotent loaders from the parsed tables into the "
                   "analytics database.",
};
