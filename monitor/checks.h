/* What the monitor checks, and how a check's result becomes an observation for the alert state machine.
 *
 * Each [check.NAME] section of the configuration is one lf_check_config (checks_config.h has its
 * option table). A check runs a probe and evaluates the result against its thresholds into an
 * lf_check_result: ok or not, the measured value and the threshold as text, and a sentence for
 * people. The evaluation functions are pure (inputs in, result out), so they are tested exactly;
 * HTTP probes take an already-fetched (status, body) so that they can be wired to any HTTP client;
 * the disk and MySQL probes run here (statvfs; libmariadb with connect/read/write timeouts).
 *
 * Kinds:
 *   healthz              GET url; 200 and a JSON body whose "status" is "ok"
 *   queue                GET url (receiver /v1/queues/sessions, bearer token): depth, oldest_age_s,
 *                        dlq_depth against max_depth, max_oldest_age, max_dlq_depth
 *   parser_progress      queue depth (url) and the parser's sessions-parsed counter (metrics_url,
 *                        metric): fails when the queue is not empty and the counter has not moved
 *                        for progress_window
 *   analytics_freshness  MySQL query returning (job, seconds since its last successful run): each
 *                        job in jobs (or every job returned) younger than max_age
 *   mysql                connect and SELECT 1 within max_latency
 *   elasticsearch        GET url (/_cluster/health): "status" no worse than es_status
 *   disk                 statvfs(path): free bytes >= min_free_bytes and free % >= min_free_percent
 *   site_quiet           GET url (receiver /v1/sites, read token): every enabled site that ever
 *                        uploaded did so within its interval (site_intervals "site=duration", else
 *                        max_quiet); a quiet site fails the check, an upload resolves it
 *   site_refusals        GET url (receiver /v1/sites): fails when more than max_refusals uploads
 *                        were refused since the previous run (for the reasons in reasons; by
 *                        default every reason a site can cause, not the receiver's own pressure)
 */
#ifndef LF_CHECKS_H
#define LF_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_state.h"
#include "lf_es.h"
#include "lf_mysql.h"

enum lf_check_kind {
    LF_CHECK_HEALTHZ = 0,
    LF_CHECK_QUEUE,
    LF_CHECK_PARSER_PROGRESS,
    LF_CHECK_ANALYTICS_FRESHNESS,
    LF_CHECK_MYSQL,
    LF_CHECK_ELASTICSEARCH,
    LF_CHECK_DISK,
    LF_CHECK_SITE_QUIET,
    LF_CHECK_SITE_REFUSALS,
};
/* "healthz", "queue", ... NULL-terminated, indexed by enum lf_check_kind (the config's enum values). */
extern const char *const lf_check_kind_names[];

/* Elasticsearch cluster health levels, worst last (the config's es_status enum values). */
enum lf_es_status { LF_ES_GREEN = 0, LF_ES_YELLOW = 1, LF_ES_RED = 2 };
extern const char *const lf_es_status_names[];

/* One [check.NAME] section. Strings and lists are owned (freed by lf_config_free). */
typedef struct lf_check_config {
    char *name;
    int kind; /* enum lf_check_kind */
    bool enabled;
    uint64_t interval_ms;
    uint64_t timeout_ms;
    /* alerting */
    uint64_t pending_count;
    uint64_t pending_for_ms;
    uint64_t reminder_every_ms;
    uint64_t flap_window_ms;
    uint64_t flap_changes; /* 0: no flap detection */
    uint64_t flap_quiet_ms;
    /* HTTP kinds */
    char *url;
    char *token; /* bearer token (queue, parser_progress); secret */
    /* queue: -1 turns a count threshold off, 0 the age threshold */
    int64_t max_depth;
    uint64_t max_oldest_age_ms;
    int64_t max_dlq_depth;
    /* parser_progress */
    char *metrics_url;
    char *metric;
    uint64_t progress_window_ms;
    /* analytics_freshness and mysql */
    char *mysql_host;
    uint64_t mysql_port;
    char *mysql_socket;
    char *mysql_user;
    char *mysql_password; /* secret */
    char *mysql_database;
    lf_mysql_tls mysql_tls;
    char *query;
    char **jobs;
    uint64_t max_age_ms;
    uint64_t max_latency_ms;
    /* elasticsearch */
    int es_status; /* worst acceptable: enum lf_es_status */
    lf_es_auth es_auth;
    /* disk */
    char *path;
    uint64_t min_free_bytes;
    double min_free_percent;
    char *runbook_url; /* linked from its Slack messages */
    char *webhook_url; /* its Slack messages go here instead of [slack] webhook_url; secret */
    /* site_quiet and site_refusals */
    uint64_t max_quiet_ms;
    char **site_intervals; /* "site=duration" */
    uint64_t max_refusals;
    char **reasons;        /* NULL: every reason a site can cause */
} lf_check_config;

typedef struct lf_check_result {
    bool ok;
    char value[LF_ALERT_VALUE_MAX];
    char threshold[LF_ALERT_VALUE_MAX];
    char message[LF_ALERT_MESSAGE_MAX];
} lf_check_result;

/* The alert rules of a check (silence_until_ms 0: the outbox adds stored silences). */
void lf_check_rules(const lf_check_config *c, lf_alert_rules *rules);
/* The observation for the state machine; it points into res, which must outlive it. */
void lf_check_observation(const lf_check_result *res, int64_t time_ms, lf_alert_observation *obs);

/* A fetched HTTP answer: transport_error < 0 when no answer arrived (then status and body unused). */
typedef struct lf_check_http {
    int transport_error;
    int status;
    const char *body;
    size_t len;
} lf_check_http;

void lf_check_eval_healthz(const lf_check_config *c, const lf_check_http *h, lf_check_result *res);
void lf_check_eval_queue(const lf_check_config *c, const lf_check_http *h, lf_check_result *res);
void lf_check_eval_elasticsearch(const lf_check_config *c, const lf_check_http *h, lf_check_result *res);

#define LF_CHECK_REFUSAL_SITES 64 /* sites whose refusals are remembered one by one (for naming them) */

/* Memory of a check between its runs (kept by the caller, zeroed at start): the parser's progress,
 * the refusals seen by the previous site_refusals run. */
typedef struct lf_check_progress {
    bool have_counter;
    double counter;
    int64_t last_progress_ms; /* last time the counter moved, or the queue was empty */
    bool have_refusals;
    uint64_t refusals; /* the total counted at the previous run */
    size_t n_sites;    /* each site's count then (the first LF_CHECK_REFUSAL_SITES sites) */
    struct {
        char name[72];
        uint64_t count;
    } sites[LF_CHECK_REFUSAL_SITES];
} lf_check_progress;

/* h: the receiver's GET /v1/sites answer. */
void lf_check_eval_site_quiet(const lf_check_config *c, const lf_check_http *h, int64_t now_ms, lf_check_result *res);
void lf_check_eval_site_refusals(const lf_check_config *c, lf_check_progress *p, const lf_check_http *h,
                                 int64_t now_ms, lf_check_result *res);
/* "site=duration" of site_intervals: the interval in ms, or 0 when entry is not of that form. */
uint64_t lf_check_site_interval(const char *entry, char *site, size_t site_size);
/* queue: the queue statistics answer; metrics: the parser's /metrics answer. */
void lf_check_eval_parser_progress(const lf_check_config *c, lf_check_progress *p, const lf_check_http *queue,
                                   const lf_check_http *metrics, int64_t now_ms, lf_check_result *res);

/* Sums every series of metric name in Prometheus text format. 0, or -ENOENT when absent. */
int lf_check_metric_sum(const char *text, size_t len, const char *name, double *sum);

typedef struct lf_check_job_age {
    const char *job;
    int64_t age_s; /* seconds since the last successful run; < 0 when it never succeeded */
} lf_check_job_age;
/* rows from the freshness query; query_error < 0 when the query failed (error names it). */
void lf_check_eval_freshness(const lf_check_config *c, const lf_check_job_age *rows, size_t n, int query_error,
                             const char *error, lf_check_result *res);

/* connect_error < 0 when the server could not be reached or the query failed (error says why). */
void lf_check_eval_mysql(const lf_check_config *c, int connect_error, const char *error, double latency_ms,
                         lf_check_result *res);

/* free and total bytes of the file system; stat_error < 0 when statvfs failed. */
void lf_check_eval_disk(const lf_check_config *c, int stat_error, uint64_t free_bytes, uint64_t total_bytes,
                        lf_check_result *res);

/* Probes that need no HTTP client. They block for at most the check's timeout (MySQL: rounded up to
 * whole seconds, per connect and per read/write). */
void lf_check_probe_disk(const lf_check_config *c, lf_check_result *res);
void lf_check_probe_mysql(const lf_check_config *c, lf_check_result *res);
void lf_check_probe_freshness(const lf_check_config *c, lf_check_result *res);

/* "1.5 GiB", "512 B" */
void lf_check_format_bytes(uint64_t bytes, char *buf, size_t cap);

#endif
