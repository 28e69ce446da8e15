/* The [check.NAME] option table and its cross-option validation: see checks_config.h. */
#include "checks_config.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lf_error.h"
#include "lf_http_client.h"

#define SEC "check.NAME"
#define F(field) offsetof(lf_check_config, field)
#define R LF_CFG_RELOADABLE

const lf_config_option lf_check_config_options[] = {
    {SEC, "kind", LF_CFG_ENUM, NULL, F(kind), .enum_values = lf_check_kind_names, .flags = R | LF_CFG_REQUIRED,
     .description = "What to check: healthz, queue, parser_progress, analytics_freshness, mysql, elasticsearch, "
                    "disk, site_quiet or site_refusals."},
    {SEC, "enabled", LF_CFG_BOOL, "true", F(enabled), .flags = R,
     .description = "A disabled check is not run (its alert state is kept)."},
    {SEC, "interval", LF_CFG_DURATION, "30s", F(interval_ms), .min = 1000, .max = 86400000.0, .flags = R,
     .description = "How often the check runs."},
    {SEC, "timeout", LF_CFG_DURATION, "10s", F(timeout_ms), .min = 100, .max = 600000, .flags = R,
     .description = "Longest a probe may take; a probe that takes longer fails."},
    {SEC, "pending_count", LF_CFG_UINT, "3", F(pending_count), .min = 1, .max = 1000000, .flags = R,
     .description = "Consecutive failures before the alert fires."},
    {SEC, "pending_for", LF_CFG_DURATION, "0", F(pending_for_ms), .min = 0, .max = 604800000.0, .flags = R,
     .description = "And failing for at least this long before the alert fires (0: no minimum)."},
    {SEC, "reminder_every", LF_CFG_DURATION, "1h", F(reminder_every_ms), .min = 0, .max = 604800000.0, .flags = R,
     .description = "While firing, a reminder this often (0: no reminders)."},
    {SEC, "flap_window", LF_CFG_DURATION, "30m", F(flap_window_ms), .min = 1000, .max = 604800000.0, .flags = R,
     .description = "Window in which fire/resolve transitions are counted for flap detection."},
    {SEC, "flap_changes", LF_CFG_UINT, "6", F(flap_changes), .min = 0, .max = 64, .flags = R,
     .description = "This many transitions within flap_window make the check flapping: reported once, then "
                    "quiet until stable (0: no flap detection)."},
    {SEC, "flap_quiet", LF_CFG_DURATION, "0", F(flap_quiet_ms), .min = 0, .max = 604800000.0, .flags = R,
     .description = "A flapping check is stable again after this long without a transition (0: flap_window)."},
    {SEC, "url", LF_CFG_STRING, NULL, F(url), .flags = R,
     .description = "healthz: the /healthz URL; queue and parser_progress: the receiver's queue statistics "
                    "(http://HOST:8440/v1/queues/sessions); elasticsearch: http://HOST:9200/_cluster/health; "
                    "site_quiet and site_refusals: the receiver's site list (http://HOST:8440/v1/sites)."},
    {SEC, "token", LF_CFG_STRING, NULL, F(token), .flags = R | LF_CFG_SECRET,
     .description = "Bearer token for the receiver: worker or read scope for the queue statistics, read for "
                    "the site list (site_quiet, site_refusals)."},
    {SEC, "max_depth", LF_CFG_INT, "-1", F(max_depth), .min = -1, .max = 9.2e18, .flags = R,
     .description = "queue: fail when more messages wait than this (-1: no limit)."},
    {SEC, "max_oldest_age", LF_CFG_DURATION, "0", F(max_oldest_age_ms), .min = 0, .max = 31536000000.0, .flags = R,
     .description = "queue: fail when the oldest message is older than this (0: no limit)."},
    {SEC, "max_dlq_depth", LF_CFG_INT, "0", F(max_dlq_depth), .min = -1, .max = 9.2e18, .flags = R,
     .description = "queue: fail when the dead-letter queue holds more than this (-1: no limit)."},
    {SEC, "metrics_url", LF_CFG_STRING, NULL, F(metrics_url), .flags = R,
     .description = "parser_progress: the parser's /metrics URL."},
    {SEC, "metric", LF_CFG_STRING, LF_CHECK_DEFAULT_METRIC, F(metric), .flags = R,
     .description = "parser_progress: the counter of parsed sessions (all its series are summed)."},
    {SEC, "progress_window", LF_CFG_DURATION, "10m", F(progress_window_ms), .min = 1000, .max = 604800000.0,
     .flags = R, .description = "parser_progress: fail when no session was parsed for this long while the queue "
                                "is not empty."},
    {SEC, "mysql_host", LF_CFG_STRING, "127.0.0.1", F(mysql_host), .flags = R,
     .description = "mysql and analytics_freshness: server address."},
    {SEC, "mysql_port", LF_CFG_UINT, "3306", F(mysql_port), .min = 1, .max = 65535, .flags = R,
     .description = "mysql and analytics_freshness: server port."},
    {SEC, "mysql_socket", LF_CFG_STRING, NULL, F(mysql_socket), .flags = R,
     .description = "mysql and analytics_freshness: Unix socket (instead of host and port)."},
    {SEC, "mysql_user", LF_CFG_STRING, NULL, F(mysql_user), .flags = R,
     .description = "mysql and analytics_freshness: user (read-only access is enough)."},
    {SEC, "mysql_password", LF_CFG_STRING, NULL, F(mysql_password), .flags = R | LF_CFG_SECRET,
     .description = "mysql and analytics_freshness: password."},
    {SEC, "mysql_database", LF_CFG_STRING, NULL, F(mysql_database), .flags = R,
     .description = "mysql and analytics_freshness: database to select (optional)."},
    LF_MYSQL_TLS_OPTIONS(SEC, "mysql_", F(mysql_tls), R),
    {SEC, "query", LF_CFG_STRING, LF_CHECK_DEFAULT_FRESHNESS_QUERY, F(query), .flags = R,
     .description = "analytics_freshness: query returning rows (job, seconds since its last successful run)."},
    {SEC, "jobs", LF_CFG_LIST, NULL, F(jobs), .flags = R,
     .description = "analytics_freshness: jobs that must be fresh; a listed job without a run fails (unset: "
                    "every job the query returns)."},
    {SEC, "max_age", LF_CFG_DURATION, "26h", F(max_age_ms), .min = 1000, .max = 31536000000.0, .flags = R,
     .description = "analytics_freshness: fail when a job's last successful run is older than this."},
    {SEC, "max_latency", LF_CFG_DURATION, "1s", F(max_latency_ms), .min = 0, .max = 600000, .flags = R,
     .description = "mysql: fail when SELECT 1 takes longer than this (0: no limit; unreachable still fails)."},
    {SEC, "es_status", LF_CFG_ENUM, "yellow", F(es_status), .enum_values = lf_es_status_names, .flags = R,
     .description = "elasticsearch: worst acceptable cluster status (green: yellow fails too; yellow: red fails)."},
    LF_ES_AUTH_OPTIONS(SEC, "es_", F(es_auth)),
    {SEC, "path", LF_CFG_STRING, NULL, F(path), .flags = R,
     .description = "disk: a path on the file system to watch."},
    {SEC, "min_free", LF_CFG_SIZE, "0", F(min_free_bytes), .flags = R,
     .description = "disk: fail when less space than this is free for unprivileged writers (0: no limit)."},
    {SEC, "min_free_percent", LF_CFG_DOUBLE, "0", F(min_free_percent), .min = 0, .max = 100, .flags = R,
     .description = "disk: fail when less than this percentage is free (0: no limit)."},
    {SEC, "runbook_url", LF_CFG_STRING, NULL, F(runbook_url), .flags = R, .validate = lf_check_link_validate,
     .description = "What to do when this check fails: its Slack alerts link here (the title and a field "
                    "\"Runbook\"). Unset: no link."},
    {SEC, "webhook_url", LF_CFG_STRING, NULL, F(webhook_url), .flags = R | LF_CFG_SECRET,
     .validate = lf_check_link_validate,
     .description = "Route this check's alerts to another Slack incoming webhook (another channel or team) "
                    "instead of [slack] webhook_url. A message only groups alerts for the same webhook."},
    {SEC, "max_quiet", LF_CFG_DURATION, "24h", F(max_quiet_ms), .min = 1000, .max = 31536000000.0, .flags = R,
     .description = "site_quiet: fail when an enabled site that has uploaded before sent nothing for longer "
                    "than this (a site that never uploaded is not judged)."},
    {SEC, "site_intervals", LF_CFG_LIST, NULL, F(site_intervals), .flags = R,
     .description = "site_quiet: per-site intervals instead of max_quiet, as SITE=DURATION (e.g. "
                    "acme-berlin=2h, weekly-site=8d)."},
    {SEC, "max_refusals", LF_CFG_UINT, "0", F(max_refusals), .max = 1e12, .flags = R,
     .description = "site_refusals: fail when more uploads than this were refused since the previous run."},
    {SEC, "reasons", LF_CFG_LIST, NULL, F(reasons), .flags = R,
     .description = "site_refusals: the refusal reasons counted (unknown_site, site_disabled, stale, "
                    "bad_signature, too_large, bad_zip, ...; unset: every reason a site causes, not the "
                    "receiver's own busy, queue_full, disk_low, in_progress and storage errors)."},
};

static_assert(sizeof(lf_check_config_options) / sizeof(lf_check_config_options[0]) == LF_CHECK_CONFIG_N_OPTIONS,
              "LF_CHECK_CONFIG_N_OPTIONS must match the table");

int lf_check_link_validate(const void *field, lf_buf *err)
{
    const char *url = *(const char *const *)field;
    int rc = lf_http_url_validate(field, err);
    if (rc || !url)
        return rc;
    if (strpbrk(url, "<>|")) { /* they would end or split Slack's <URL|text> markup */
        lf_buf_msgf(err, "must not contain <, > or |");
        return LF_ECONFIG;
    }
    return 0;
}

static int fail(lf_buf *err, const lf_check_config *c, const char *key, const char *why)
{
    if (err)
        lf_buf_msgf(err, "[check.%s] %s: %s", c->name ? c->name : "?", key, why);
    return LF_ECONFIG;
}

static bool is_http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) && strlen(u) > 8;
}

int lf_check_config_validate(const lf_check_config *c, lf_buf *err)
{
    switch (c->kind) {
    case LF_CHECK_HEALTHZ:
        if (!is_http_url(c->url))
            return fail(err, c, "url", "an http:// or https:// URL is required for this kind");
        break;
    case LF_CHECK_ELASTICSEARCH: {
        if (!is_http_url(c->url))
            return fail(err, c, "url", "an http:// or https:// URL is required for this kind");
        lf_buf why = LF_BUF_INIT(256);
        int rc = lf_es_url_validate(&c->url, &why);
        if (rc != 0)
            fail(err, c, "url", lf_buf_cstr(&why));
        lf_buf_free(&why);
        if (rc != 0)
            return rc;
        break;
    }
    case LF_CHECK_QUEUE:
        if (!is_http_url(c->url))
            return fail(err, c, "url", "the receiver's queue statistics URL is required");
        if (c->max_depth < 0 && c->max_oldest_age_ms == 0 && c->max_dlq_depth < 0)
            return fail(err, c, "max_depth", "a queue check needs max_depth, max_oldest_age or max_dlq_depth");
        break;
    case LF_CHECK_PARSER_PROGRESS:
        if (!is_http_url(c->url))
            return fail(err, c, "url", "the receiver's queue statistics URL is required");
        if (!is_http_url(c->metrics_url))
            return fail(err, c, "metrics_url", "the parser's /metrics URL is required");
        if (!c->metric || !c->metric[0])
            return fail(err, c, "metric", "a counter name is required");
        break;
    case LF_CHECK_ANALYTICS_FRESHNESS:
        if (!c->query || !c->query[0])
            return fail(err, c, "query", "a query returning (job, seconds since last success) is required");
        break;
    case LF_CHECK_MYSQL:
        break;
    case LF_CHECK_SITE_QUIET:
    case LF_CHECK_SITE_REFUSALS:
        if (!is_http_url(c->url))
            return fail(err, c, "url", "the receiver's site list URL (http://HOST:8440/v1/sites) is required");
        for (char **e = c->site_intervals; e && *e; e++) {
            char site[80];
            if (!lf_check_site_interval(*e, site, sizeof site))
                return fail(err, c, "site_intervals", "each entry is SITE=DURATION, e.g. acme-berlin=2h");
        }
        break;
    case LF_CHECK_DISK:
        if (!c->path || c->path[0] != '/')
            return fail(err, c, "path", "an absolute path is required");
        if (c->min_free_bytes == 0 && c->min_free_percent <= 0)
            return fail(err, c, "min_free", "a disk check needs min_free or min_free_percent");
        break;
    default:
        return fail(err, c, "kind", "unknown kind");
    }
    const lf_mysql_tls *t = &c->mysql_tls;
    if (c->kind == LF_CHECK_MYSQL || c->kind == LF_CHECK_ANALYTICS_FRESHNESS) {
        const char *key = NULL;
        char name[32];
        lf_buf why = LF_BUF_INIT(512);
        int rc = lf_mysql_tls_check(t, &key, &why);
        if (rc != 0) {
            snprintf(name, sizeof name, "mysql_%s", key);
            fail(err, c, name, lf_buf_cstr(&why));
        }
        lf_buf_free(&why);
        if (rc != 0)
            return rc;
    } else if (t->ca || t->cert || t->key) {
        return fail(err, c, "mysql_ssl_ca", "the MySQL TLS settings are for kinds mysql and analytics_freshness only");
    }
    const lf_es_auth *a = &c->es_auth;
    if (c->kind != LF_CHECK_ELASTICSEARCH &&
        (a->user || a->password || a->password_file || a->api_key || a->api_key_file || a->ca_file))
        return fail(err, c, "es_user", "Elasticsearch credentials and es_ca_file are for kind elasticsearch only");
    if (c->timeout_ms >= c->interval_ms)
        return fail(err, c, "timeout", "must be shorter than interval");
    return 0;
}
