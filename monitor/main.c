/* logferry-monitor: entry point. The daemon runs the alerting engine (monitor_engine.h) on the
 * service loop; the subcommands silence / unsilence / status work on the same outbox file. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_log.h"
#include "lf_service.h"
#include "monitor_cli.h"
#include "monitor_config.h"
#include "monitor_engine.h"
#include "slack_message.h"

/* Deliveries failing in a row, with notifications waiting, before /healthz says degraded. */
#define DEGRADED_AFTER_FAILURES 2
#define STATS_SYNC_MS 500

struct monitor {
    lf_service *svc;
    lf_monitor_engine *eng; /* NULL while a reload swaps engines */
    char db_path[PATH_MAX];
    bool restarting;        /* an engine stop for a reload is in progress */
    bool stopping;          /* the service is stopping: no new engine */
    int refs;               /* the sync timer, and an engine stop for a reload in progress */
    uv_timer_t sync_timer;
    /* what the running engine's counters were at the last sync (they restart at 0 with it) */
    lf_monitor_engine_stats last;
    /* deliveries failed since the last successful one, across engines */
    uint64_t failures_in_row;
    int64_t undelivered;
    lf_counter *c_checks_ok, *c_checks_failed, *c_notifications, *c_sent, *c_delivery_failures, *c_hb_ok,
        *c_hb_failed, *c_record_errors, *c_reloads;
    lf_gauge *g_undelivered;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_path_of(const struct lf_monitor_config *c, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/monitor.db", c->state_dir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Metrics and health: the engine's counters restart with each engine, the exported ones do not. */

static void add_delta(lf_counter *c, uint64_t now, uint64_t before)
{
    if (c && now > before)
        lf_counter_add(c, now - before);
}

static void sync_stats(struct monitor *m)
{
    if (!m->eng)
        return;
    lf_monitor_engine_stats s;
    lf_monitor_engine_stats_get(m->eng, &s);
    const lf_monitor_engine_stats *p = &m->last;
    add_delta(m->c_checks_ok, s.checks_run - s.checks_failed, p->checks_run - p->checks_failed);
    add_delta(m->c_checks_failed, s.checks_failed, p->checks_failed);
    add_delta(m->c_notifications, s.notifications, p->notifications);
    add_delta(m->c_sent, s.messages_sent, p->messages_sent);
    add_delta(m->c_delivery_failures, s.delivery_failures, p->delivery_failures);
    add_delta(m->c_hb_ok, s.heartbeats_ok, p->heartbeats_ok);
    add_delta(m->c_hb_failed, s.heartbeats_failed, p->heartbeats_failed);
    add_delta(m->c_record_errors, s.record_errors, p->record_errors);
    if (s.messages_sent > p->messages_sent)
        m->failures_in_row = 0;
    if (s.delivery_failures > p->delivery_failures)
        m->failures_in_row += s.delivery_failures - p->delivery_failures;
    m->undelivered = s.undelivered;
    if (m->g_undelivered)
        lf_gauge_set(m->g_undelivered, (double)s.undelivered);
    m->last = s;
}

static void on_sync_timer(uv_timer_t *t)
{
    sync_stats(t->data);
}

static enum lf_health health_alerting(lf_service *svc, void *arg, lf_buf *detail)
{
    (void)svc;
    struct monitor *m = arg;
    sync_stats(m);
    const struct lf_monitor_config *c = lf_service_config_data(m->svc);
    if (m->undelivered > 0 && !c->slack_webhook_url) {
        lf_buf_msgf(detail, "%" PRId64 " notification(s) waiting: no [slack] webhook_url", m->undelivered);
        return LF_HEALTH_DEGRADED;
    }
    if (m->undelivered > 0 && m->failures_in_row >= DEGRADED_AFTER_FAILURES) {
        lf_buf_msgf(detail, "%" PRId64 " notification(s) waiting; the last %" PRIu64 " deliveries failed",
                       m->undelivered, m->failures_in_row);
        return LF_HEALTH_DEGRADED;
    }
    if (m->last.record_errors > 0)
        lf_buf_msgf(detail, "%" PRIu64 " observation(s) could not be recorded; ", m->last.record_errors);
    lf_buf_msgf(detail, "%" PRId64 " notification(s) waiting, %" PRIu64 " message(s) sent", m->undelivered,
                   m->last.messages_sent);
    return LF_HEALTH_OK;
}

static int register_metrics(struct monitor *m)
{
    lf_metrics *r = lf_service_metrics(m->svc);
    const char *hc = "Check runs completed, by result";
    const char *hh = "Heartbeat (dead-man's switch) pings, by result";
    m->c_checks_ok = lf_metrics_counter(r, "lf_monitor_checks_total", hc, "result=\"ok\"");
    m->c_checks_failed = lf_metrics_counter(r, "lf_monitor_checks_total", hc, "result=\"failed\"");
    m->c_notifications = lf_metrics_counter(r, "lf_monitor_notifications_total",
                                            "Notifications produced by the alert state machines", NULL);
    m->c_sent = lf_metrics_counter(r, "lf_monitor_messages_sent_total", "Slack messages answered 200", NULL);
    m->c_delivery_failures = lf_metrics_counter(r, "lf_monitor_delivery_failures_total",
                                                "Slack webhook attempts that failed (429 included)", NULL);
    m->c_hb_ok = lf_metrics_counter(r, "lf_monitor_heartbeats_total", hh, "result=\"ok\"");
    m->c_hb_failed = lf_metrics_counter(r, "lf_monitor_heartbeats_total", hh, "result=\"failed\"");
    m->c_record_errors = lf_metrics_counter(r, "lf_monitor_record_errors_total",
                                            "Observations lost because the outbox could not be written", NULL);
    m->c_reloads = lf_metrics_counter(r, "lf_monitor_engine_restarts_total",
                                      "Engine restarts for a configuration reload", NULL);
    m->g_undelivered = lf_metrics_gauge(r, "lf_monitor_undelivered_notifications",
                                        "Notifications waiting for Slack, as of the last look", NULL);
    if (!m->c_checks_ok || !m->c_checks_failed || !m->c_notifications || !m->c_sent || !m->c_delivery_failures ||
        !m->c_hb_ok || !m->c_hb_failed || !m->c_record_errors || !m->c_reloads || !m->g_undelivered)
        return -ENOMEM;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The engine */

static int engine_start(struct monitor *m)
{
    const struct lf_monitor_config *c = lf_service_config_data(m->svc);
    lf_monitor_engine_opts o = {
        .loop = lf_service_loop(m->svc),
        .checks = c->checks,
        .n_checks = c->n_checks,
        .outbox_path = m->db_path,
        .outbox = {.group_window_ms = c->group_window_ms ? (int64_t)c->group_window_ms : -1},
        .webhook_url = c->slack_webhook_url,
        .dashboard_url = c->slack_dashboard_url,
        .slack_timeout_ms = (long)c->slack_timeout_ms,
        .heartbeat_url = c->heartbeat_url,
        .heartbeat_interval_ms = c->heartbeat_interval_ms,
        .host = c->host,
    };
    memset(&m->last, 0, sizeof m->last);
    int rc = lf_monitor_engine_start(&o, &m->eng);
    if (rc < 0) {
        m->eng = NULL;
        LF_ERROR("monitor", "starting the engine on %s: %s", m->db_path, lf_strerror(rc));
    }
    return rc;
}

static void monitor_unref(struct monitor *m)
{
    if (--m->refs == 0)
        lf_free(m);
}

static void on_engine_stopped_for_reload(void *arg)
{
    struct monitor *m = arg;
    m->restarting = false;
    if (m->stopping) {
        monitor_unref(m);
        return;
    }
    monitor_unref(m); /* the service holds the other reference */
    lf_counter_inc(m->c_reloads);
    /* A failed start leaves the monitor without checks: that is an outage, so stop and let systemd
     * restart it (the configuration was already validated, so this is the outbox file failing). */
    if (engine_start(m) < 0)
        lf_service_shutdown(m->svc, 1);
}

static void stop_engine(struct monitor *m, void (*done)(void *), void *arg)
{
    sync_stats(m);
    lf_monitor_engine *eng = m->eng;
    m->eng = NULL;
    lf_monitor_engine_stop(eng, done, arg);
}

/* ---------------------------------------------------------------------------------------------- */
/* Service hooks */

static void on_sync_timer_closed(uv_handle_t *h)
{
    monitor_unref(h->data);
}

static int start(lf_service *svc)
{
    const struct lf_monitor_config *c = lf_service_config_data(svc);
    struct monitor *m = lf_calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->svc = svc;
    int rc = db_path_of(c, m->db_path, sizeof m->db_path);
    if (rc == 0 && (rc = lf_mkdir_p(c->state_dir, 0750)) < 0)
        LF_ERROR("monitor", "creating state_dir %s: %s", c->state_dir, lf_strerror(rc));
    if (rc == 0)
        rc = register_metrics(m);
    if (rc == 0)
        rc = uv_timer_init(lf_service_loop(svc), &m->sync_timer);
    if (rc < 0) {
        lf_free(m);
        return rc;
    }
    m->refs = 1; /* the timer's: m lives until it is closed */
    m->sync_timer.data = m;
    if ((rc = engine_start(m)) < 0) {
        uv_close((uv_handle_t *)&m->sync_timer, on_sync_timer_closed);
        return rc;
    }
    if ((rc = lf_service_add_check(svc, "alerting", health_alerting, m)) < 0) {
        m->stopping = true;
        stop_engine(m, NULL, NULL);
        uv_close((uv_handle_t *)&m->sync_timer, on_sync_timer_closed);
        return rc;
    }
    uv_timer_start(&m->sync_timer, on_sync_timer, STATS_SYNC_MS, STATS_SYNC_MS);
    lf_service_set_user(svc, m);
    return 0;
}

static void stop(lf_service *svc)
{
    struct monitor *m = lf_service_user(svc);
    if (!m)
        return;
    lf_service_set_user(svc, NULL);
    m->stopping = true;
    if (m->eng)
        stop_engine(m, NULL, NULL);
    /* a reload's engine stop still in progress holds its own reference and starts nothing now */
    uv_close((uv_handle_t *)&m->sync_timer, on_sync_timer_closed);
}

static void reload(lf_service *svc, const char *changed)
{
    struct monitor *m = lf_service_user(svc);
    if (!m || m->stopping)
        return;
    LF_INFO("monitor", "configuration changed (%s): restarting the checks", changed);
    if (m->restarting)
        return; /* the engine starting in the pending callback reads the configuration as it is now */
    m->restarting = true;
    m->refs++;
    if (m->eng)
        stop_engine(m, on_engine_stopped_for_reload, m);
    else
        on_engine_stopped_for_reload(m);
}

/* ---------------------------------------------------------------------------------------------- */
/* Commands */

static int run_cli(lf_service *svc, int argc, char **argv)
{
    const struct lf_monitor_config *c = lf_service_config_data(svc);
    char db[PATH_MAX];
    if (db_path_of(c, db, sizeof db) < 0) {
        fprintf(stderr, "logferry-monitor %s: state_dir too long\n", argv[0]);
        return 2;
    }
    int rc = lf_mkdir_p(c->state_dir, 0750);
    if (rc < 0) {
        fprintf(stderr, "logferry-monitor %s: creating %s: %s\n", argv[0], c->state_dir, lf_strerror(rc));
        return 1;
    }
    return lf_monitor_cli_run(db, argc, argv, wall_ms(), stdout, stderr);
}

/* `test-alert [CHECK]`: one message through the real path (the message builder, the webhook, with
 * the dashboard link and CHECK's runbook and route), and what Slack answered. */
static int run_test_alert(lf_service *svc, int argc, char **argv)
{
    const struct lf_monitor_config *c = lf_service_config_data(svc);
    if (argc > 2) {
        fprintf(stderr, "usage: logferry-monitor test-alert [CHECK]\n");
        return 2;
    }
    const char *runbook = NULL, *webhook = c->slack_webhook_url;
    for (size_t i = 0; argc == 2 && i < c->n_checks; i++)
        if (strcmp(c->checks[i].name, argv[1]) == 0) {
            runbook = c->checks[i].runbook_url;
            if (c->checks[i].webhook_url)
                webhook = c->checks[i].webhook_url; /* the check's own route */
        }
    if (!webhook) {
        fprintf(stderr, "logferry-monitor test-alert: no [slack] webhook_url (nor the check's own): alerts are only "
                        "logged\n");
        return 1;
    }
    char host[256] = "";
    if (c->host)
        snprintf(host, sizeof host, "%s", c->host);
    else if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown host");
    lf_alert_note note;
    memset(&note, 0, sizeof note);
    note.kind = LF_NOTIFY_RESOLVED; /* green: nothing is wrong */
    note.at_ms = note.since_ms = wall_ms();
    snprintf(note.value, sizeof note.value, "test");
    snprintf(note.threshold, sizeof note.threshold, "-");
    snprintf(note.message, sizeof note.message,
             "Test message from logferry-monitor on %s: alerts reach this channel. Nothing is wrong.", host);
    lf_slack_item item = {argc == 2 ? argv[1] : "test-alert", &note, runbook};
    lf_buf body = LF_BUF_INIT(1 << 20);
    int rc = lf_slack_message_build_linked(&item, 1, host, c->slack_dashboard_url, note.at_ms, &body);
    lf_http_client *http = NULL;
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.max_attempts = 1;
    rc = rc ? rc : lf_http_client_new(NULL, &o, &http);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    lf_http_client_request req = {.method = "POST", .url = webhook, .headers = headers,
                                  .body = body.data, .body_len = body.len, .max_response = 64 * 1024,
                                  .timeout_ms = (long)c->slack_timeout_ms};
    lf_http_response resp;
    memset(&resp, 0, sizeof resp);
    rc = rc ? rc : lf_http_client_fetch(http, &req, &resp);
    int exit_code = 1;
    if (rc < 0)
        fprintf(stderr, "logferry-monitor test-alert: the webhook did not answer: %s\n", lf_strerror(rc));
    else if (resp.status == 200) {
        printf("Slack answered 200 %s: the test message was posted\n", lf_buf_cstr(&resp.body));
        exit_code = 0;
    } else
        /* Slack says why in the body: invalid_token, no_service (a revoked webhook), channel_not_found... */
        printf("Slack answered %d %s: the webhook URL is wrong, revoked, or its channel is gone\n", resp.status,
               lf_buf_cstr(&resp.body));
    lf_http_response_free(&resp);
    if (http)
        lf_http_client_close(http, NULL, NULL);
    lf_buf_free(&body);
    return exit_code;
}

/* What start-up needs (lf_service_def.preflight): a state directory it can write, a webhook URL that
 * parses, the TLS files of the MySQL checks. */
static void preflight(const void *config, lf_preflight *pf)
{
    const struct lf_monitor_config *c = config;
    lf_preflight_dir(pf, "monitor", "state_dir", c->state_dir, true, true);
    lf_preflight_url(pf, "slack", "webhook_url", c->slack_webhook_url);
    lf_preflight_url(pf, "slack", "dashboard_url", c->slack_dashboard_url);
    lf_preflight_url(pf, "monitor", "heartbeat_url", c->heartbeat_url);
    for (size_t i = 0; i < c->n_checks; i++) {
        const lf_check_config *k = &c->checks[i];
        if (k->kind != LF_CHECK_MYSQL && k->kind != LF_CHECK_ANALYTICS_FRESHNESS)
            continue;
        char section[160];
        snprintf(section, sizeof section, "check.%s", k->name ? k->name : "?");
        lf_mysql_tls_preflight(pf, section, "mysql_", &k->mysql_tls);
    }
}

static const lf_service_command monitor_commands[] = {
    {"silence", "CHECK DURATION [REASON...]",
     "Send nothing for CHECK (\"*\": every check) for DURATION (30m, 2h, 1d); checks keep running.", run_cli, .no_config = false},
    {"unsilence", "CHECK", "End the silence of CHECK now.", run_cli, .no_config = false},
    {"status", "", "Every check: condition, since when, silence, notifications waiting for Slack.", run_cli, .no_config = false},
    {"test-alert", "[CHECK]",
     "Post one test message to Slack through the real path (with the dashboard link, and CHECK's runbook) and "
     "print what Slack answered; exit 1 unless it took it.",
     run_test_alert, .no_config = false},
};

static const lf_service_def monitor = {
    .program = "logferry-monitor",
    .summary = "Watches every other part of logferry and alerts to Slack; keeps working when the rest "
               "is down.",
    .description = "Each [check.NAME] section is one check run on its interval: a program's /healthz, a queue's "
                   "depth, age and dead letters, a database, a disk. A check that starts failing, and one that "
                   "recovers, is posted to Slack (grouped within group_window, kept in an outbox until Slack "
                   "takes it); the monitor shares nothing with what it watches.",
    .section = "8",
    .state_dir = "/var/lib/logferry/monitor",
    .config = &lf_monitor_config_table,
    .commands = monitor_commands,
    .preflight = preflight,
    .n_commands = sizeof monitor_commands / sizeof monitor_commands[0],
    .validate = lf_monitor_config_validate,
    .start = start,
    .stop = stop,
    .reload = reload,
};

int main(int argc, char **argv)
{
    return lf_service_main(&monitor, argc, argv);
}
