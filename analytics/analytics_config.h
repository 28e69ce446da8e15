/* logferry-analytics's configuration: the common service options plus its own (analytics_config.c). */
#ifndef LF_ANALYTICS_CONFIG_H
#define LF_ANALYTICS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_config.h"
#include "lf_mysql.h"
#include "lf_service.h"

/* [job.NAME]: an operator's SQL job (docs/analytics.md). */
struct lf_analytics_job_section {
    char *name;
    char *sql_file;
    char *schedule;
};

struct lf_analytics_config {
    lf_service_config common; /* first: lf_service reads it */
    char *mysql_host;
    uint64_t mysql_port;
    char *mysql_socket;
    char *mysql_user;
    char *mysql_password;
    lf_mysql_tls mysql_tls;
    /* [source]: the parsed tables' server when it is not the target's ([mysql]); unset = same. */
    char *source_host;
    uint64_t source_port;
    char *source_socket;
    char *source_user;
    char *source_password;
    lf_mysql_tls source_tls; /* used when [source] names its own server */
    char *source_database;
    char *target_database;
    char *schedule; /* cron expression of the built-in jobs */
    char *timezone; /* TZ database name the schedules are read in */
    struct lf_analytics_job_section *jobs;
    size_t n_jobs;
    /* [dashboard] */
    char *dashboard_users_file;
    bool dashboard_anonymous;
    uint64_t dashboard_session_lifetime; /* ms */
    int dashboard_cookie_secure;         /* index into lf_analytics_cookie_secure_values */
    /* [pipeline] */
    char *pipeline_receiver_url;
    char *pipeline_receiver_token_file;
    char *pipeline_receiver_ca_file;
    char *pipeline_queue;
};

extern const char *const lf_analytics_cookie_secure_values[]; /* auto, always, never */

extern const lf_config_table lf_analytics_config_table;

#endif
