/* Check evaluation (thresholds, value and threshold text), the disk and MySQL probes, and the
 * [check.NAME] configuration section. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "check_run.h"
#include "checks.h"
#include "checks_config.h"
#include "lf_config.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_test_http_server.h"
#include "lf_test_mariadb.h"

static lf_check_config base(int kind)
{
    lf_check_config c;
    memset(&c, 0, sizeof(c));
    c.name = "t";
    c.kind = kind;
    c.url = "http://127.0.0.1:8440/x";
    c.interval_ms = 30000;
    c.timeout_ms = 1000;
    c.max_depth = -1;
    c.max_dlq_depth = -1;
    return c;
}

static lf_check_http answer(int status, const char *body)
{
    lf_check_http h = {0, status, body, body ? strlen(body) : 0};
    return h;
}

static void test_healthz(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_HEALTHZ);
    lf_check_result r;
    lf_check_http h = answer(200, "{\"status\":\"ok\",\"uptime_s\":5}");
    lf_check_eval_healthz(&c, &h, &r);
    assert_true(r.ok);
    h = answer(200, "{\"status\":\"degraded\",\"why\":\"disk\"}");
    lf_check_eval_healthz(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "degraded");
    assert_non_null(strstr(r.message, "degraded"));
    h = answer(503, "{\"status\":\"ok\"}");
    lf_check_eval_healthz(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "HTTP 503");
    assert_string_equal(r.threshold, "HTTP 200");
    h = answer(200, "<html>");
    lf_check_eval_healthz(&c, &h, &r);
    assert_false(r.ok);
    h = answer(200, "[\"status\",\"ok\"]");
    lf_check_eval_healthz(&c, &h, &r);
    assert_false(r.ok);
    h = (lf_check_http){-ECONNREFUSED, 0, NULL, 0};
    lf_check_eval_healthz(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "unreachable");
    assert_non_null(strstr(r.message, "127.0.0.1:8440"));
}

static void test_queue_thresholds(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_QUEUE);
    c.max_depth = 1000;
    c.max_oldest_age_ms = 600000;
    c.max_dlq_depth = 0;
    lf_check_result r;
    lf_check_http h = answer(200, "{\"depth\":1000,\"oldest_age_s\":600,\"dlq_depth\":0,\"in_flight\":3}");
    lf_check_eval_queue(&c, &h, &r);
    assert_true(r.ok); /* at the limits is within them */
    assert_string_equal(r.value, "depth 1000, oldest 10m 0s, dead letters 0");
    h = answer(200, "{\"depth\":1001,\"oldest_age_s\":5,\"dlq_depth\":0}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.threshold, "depth <= 1000");
    h = answer(200, "{\"depth\":10,\"oldest_age_s\":601,\"dlq_depth\":0}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.threshold, "oldest <= 10m 0s");
    assert_string_equal(r.message, "oldest message waits for 10m 1s");
    h = answer(200, "{\"depth\":10,\"oldest_age_ms\":7200000,\"dlq_depth\":0}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.value, "oldest 2h 0m"));
    h = answer(200, "{\"depth\":5000,\"oldest_age_s\":9999,\"dlq_depth\":2}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.threshold, "dead letters <= 0"); /* dead letters reported first */
    c.max_depth = -1;
    c.max_oldest_age_ms = 0;
    c.max_dlq_depth = -1;
    lf_check_eval_queue(&c, &h, &r);
    assert_true(r.ok); /* every threshold off */
    h = answer(200, "{\"depth\":-4}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "unreadable");
    h = answer(401, "{\"error\":\"unauthorized\"}");
    lf_check_eval_queue(&c, &h, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "token rejected"));
}

static void test_elasticsearch(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_ELASTICSEARCH);
    c.es_status = LF_ES_YELLOW;
    lf_check_result r;
    lf_check_http h = answer(200, "{\"cluster_name\":\"lf\",\"status\":\"yellow\",\"unassigned_shards\":5}");
    lf_check_eval_elasticsearch(&c, &h, &r);
    assert_true(r.ok);
    assert_string_equal(r.value, "yellow, 5 unassigned shard(s)");
    assert_string_equal(r.threshold, "status yellow or better");
    c.es_status = LF_ES_GREEN;
    lf_check_eval_elasticsearch(&c, &h, &r);
    assert_false(r.ok);
    assert_string_equal(r.threshold, "status green");
    h = answer(200, "{\"cluster_name\":\"lf\",\"status\":\"green\"}");
    lf_check_eval_elasticsearch(&c, &h, &r);
    assert_true(r.ok);
    c.es_status = LF_ES_YELLOW;
    h = answer(200, "{\"cluster_name\":\"lf\",\"status\":\"red\"}");
    lf_check_eval_elasticsearch(&c, &h, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "is red"));
    h = answer(200, "{\"status\":\"purple\"}");
    lf_check_eval_elasticsearch(&c, &h, &r);
    assert_false(r.ok);
}

static void test_metric_sum(void **st)
{
    (void)st;
    const char *text = "# HELP lf_parser_sessions_parsed_total Sessions parsed.\n"
                       "# TYPE lf_parser_sessions_parsed_total counter\n"
                       "lf_parser_sessions_parsed_total{result=\"ok\"} 40\n"
                       "lf_parser_sessions_parsed_total{result=\"odd}\\\" \"} 2\n"
                       "lf_parser_sessions_parsed_total_created 1700000000\n"
                       "lf_parser_sessions_parsed_totalx 999\n"
                       "lf_parser_sessions_parsed_total 0.5 1700000000000\n"
                       "lf_parser_sessions_parsed_total{result=\"bad\"} NaN\n";
    double v = -1;
    assert_int_equal(lf_check_metric_sum(text, strlen(text), "lf_parser_sessions_parsed_total", &v), 0);
    assert_true(v == 42.5);
    assert_int_equal(lf_check_metric_sum(text, strlen(text), "nope_total", &v), -ENOENT);
    assert_int_equal(lf_check_metric_sum(text, 10, "lf_parser_sessions_parsed_total", &v), -ENOENT);
    assert_int_equal(lf_check_metric_sum("", 0, "x", &v), -ENOENT);
}

static void test_parser_progress(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_PARSER_PROGRESS);
    c.progress_window_ms = 10 * 60000;
    c.metric = "parsed_total";
    lf_check_progress p = {0};
    lf_check_result r;
    int64_t t = 1700000000000LL;
    char m[64];
    lf_check_http q = answer(200, "{\"depth\":50,\"oldest_age_s\":10,\"dlq_depth\":0}");
    /* parsing: counter moves every minute */
    for (int i = 0; i < 5; i++, t += 60000) {
        snprintf(m, sizeof(m), "parsed_total %d\n", i * 10);
        lf_check_http mh = answer(200, m);
        lf_check_eval_parser_progress(&c, &p, &q, &mh, t, &r);
        assert_true(r.ok);
    }
    /* the parser stops (counter frozen at 40) with work waiting: fails once 10 minutes have passed */
    int64_t stop = t - 60000;
    lf_check_http frozen = answer(200, "parsed_total 40\n");
    for (; t < stop + 10 * 60000; t += 60000) {
        lf_check_eval_parser_progress(&c, &p, &q, &frozen, t, &r);
        assert_true(r.ok);
    }
    lf_check_eval_parser_progress(&c, &p, &q, &frozen, t, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "no progress for 10m 0s, queue depth 50");
    /* parser process gone: metrics unreachable, still failing */
    lf_check_http gone = {-ECONNREFUSED, 0, NULL, 0};
    t += 60000;
    lf_check_eval_parser_progress(&c, &p, &q, &gone, t, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "cannot be read"));
    /* restarted: counter starts again from a small value -> progress */
    t += 60000;
    lf_check_http restarted = answer(200, "parsed_total 3\n");
    lf_check_eval_parser_progress(&c, &p, &q, &restarted, t, &r);
    assert_true(r.ok);
    /* empty queue: nothing to parse is not a stall, however long */
    lf_check_http empty = answer(200, "{\"depth\":0,\"oldest_age_s\":0,\"dlq_depth\":0}");
    for (int i = 0; i < 30; i++) {
        t += 60000;
        lf_check_eval_parser_progress(&c, &p, &empty, &restarted, t, &r);
        assert_true(r.ok);
    }
    /* work arrives: the window starts when the queue became non-empty */
    for (int i = 0; i < 9; i++) {
        t += 60000;
        lf_check_eval_parser_progress(&c, &p, &q, &restarted, t, &r);
        assert_true(r.ok);
    }
    t += 60000;
    lf_check_eval_parser_progress(&c, &p, &q, &restarted, t, &r);
    assert_false(r.ok);
    /* the queue statistics themselves unreachable */
    lf_check_http qgone = {-ETIMEDOUT, 0, NULL, 0};
    lf_check_eval_parser_progress(&c, &p, &qgone, &restarted, t + 1, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "unreachable");
}

static void test_freshness(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_ANALYTICS_FRESHNESS);
    c.max_age_ms = 26 * 3600 * 1000LL;
    lf_check_result r;
    lf_check_job_age rows[] = {{"daily_usage", 3600}, {"feature_usage", 7200}, {"errors", 30 * 3600}};
    lf_check_eval_freshness(&c, rows, 2, 0, NULL, &r);
    assert_true(r.ok);
    assert_string_equal(r.value, "2 job(s), oldest run 2h 0m ago");
    lf_check_eval_freshness(&c, rows, 3, 0, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "errors: 1d 6h ago");
    char *jobs[] = {"daily_usage", "retention", NULL};
    c.jobs = jobs;
    lf_check_eval_freshness(&c, rows, 3, 0, NULL, &r);
    assert_false(r.ok); /* retention never ran: worse than errors being stale, but errors is not listed */
    assert_string_equal(r.value, "retention: never");
    char *jobs2[] = {"daily_usage", "feature_usage", NULL};
    c.jobs = jobs2;
    lf_check_eval_freshness(&c, rows, 3, 0, NULL, &r);
    assert_true(r.ok);
    c.jobs = NULL;
    lf_check_eval_freshness(&c, rows, 0, 0, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "no runs");
    lf_check_eval_freshness(&c, NULL, 0, LF_EDB, "Table 'logferry_analytics.job_runs' doesn't exist", &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "doesn't exist"));
}

static void test_mysql_eval(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_MYSQL);
    c.max_latency_ms = 100;
    c.mysql_host = "db1";
    lf_check_result r;
    lf_check_eval_mysql(&c, 0, NULL, 3.25, &r);
    assert_true(r.ok);
    assert_string_equal(r.value, "SELECT 1 in 3.2 ms");
    assert_string_equal(r.threshold, "SELECT 1 within 100 ms");
    lf_check_eval_mysql(&c, 0, NULL, 250, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "slow"));
    lf_check_eval_mysql(&c, -ECONNREFUSED, "Can't connect", 0, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "db1"));
    assert_non_null(strstr(r.message, "Can't connect"));
}

/* A loopback port that nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_mysql_probe_unreachable_and_silent(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_MYSQL);
    c.mysql_host = "127.0.0.1";
    c.mysql_user = "nobody";
    c.max_latency_ms = 1000;
    c.timeout_ms = 1000;
    lf_check_result r;
    c.mysql_port = (uint64_t)closed_port();
    double t0 = mono_s();
    lf_check_probe_mysql(&c, &r);
    assert_false(r.ok);
    assert_true(mono_s() - t0 < 5);

    /* a server that accepts and never speaks: the probe gives up after the timeout */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t len = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    c.mysql_port = ntohs(a.sin_port);
    t0 = mono_s();
    lf_check_probe_mysql(&c, &r);
    double took = mono_s() - t0;
    assert_false(r.ok);
    assert_true(took >= 0.5);
    assert_true(took < 10);
    close(lfd);

    c.query = "SELECT 1";
    lf_check_probe_freshness(&c, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "query failed");
}

static void test_disk(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_DISK);
    c.path = "/";
    lf_check_result r;
    c.min_free_percent = 0.0001;
    lf_check_probe_disk(&c, &r);
    assert_true(r.ok);
    assert_non_null(strstr(r.value, "free ("));
    c.min_free_percent = 0;
    c.min_free_bytes = UINT64_MAX / 2; /* 8 EiB: no disk here has that */
    lf_check_probe_disk(&c, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "almost full"));
    c.path = "/nonexistent/dir";
    lf_check_probe_disk(&c, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "unknown");

    c.path = "/data";
    c.min_free_bytes = 10ull << 30;
    c.min_free_percent = 5;
    lf_check_eval_disk(&c, 0, 9ull << 30, 100ull << 30, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "9.0 GiB free (9.0%)");
    assert_string_equal(r.threshold, "free >= 10.0 GiB and >= 5.0%");
    lf_check_eval_disk(&c, 0, 11ull << 30, 1000ull << 30, &r);
    assert_false(r.ok); /* 1.1 % */
    lf_check_eval_disk(&c, 0, 60ull << 30, 1000ull << 30, &r);
    assert_true(r.ok);
    char b[32];
    lf_check_format_bytes(512, b, sizeof(b));
    assert_string_equal(b, "512 B");
    lf_check_format_bytes(1536, b, sizeof(b));
    assert_string_equal(b, "1.5 KiB");
}

static void test_rules_and_observation(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_DISK);
    c.pending_count = 4;
    c.pending_for_ms = 120000;
    c.reminder_every_ms = 3600000;
    c.flap_window_ms = 1800000;
    c.flap_changes = 6;
    c.flap_quiet_ms = 900000;
    lf_alert_rules ru;
    lf_check_rules(&c, &ru);
    assert_int_equal(ru.pending_count, 4);
    assert_int_equal(ru.pending_ms, 120000);
    assert_int_equal(ru.reminder_ms, 3600000);
    assert_int_equal(ru.flap_window_ms, 1800000);
    assert_int_equal(ru.flap_threshold, 6);
    assert_int_equal(ru.flap_quiet_ms, 900000);
    assert_int_equal(ru.silence_until_ms, 0);
    lf_check_result r = {.ok = false, .value = "v", .threshold = "t", .message = "m"};
    lf_alert_observation o;
    lf_check_observation(&r, 1234, &o);
    assert_int_equal(o.time_ms, 1234);
    assert_false(o.ok);
    assert_string_equal(o.value, "v");
    assert_string_equal(o.message, "m");
}

/* The section table plugged into a program's configuration the way monitor/main.c does it. */
struct mon_config {
    char *slack_url;
    lf_check_config *checks;
    size_t n_checks;
};

static const lf_config_option mon_options[] = {
    {"slack", "webhook_url", LF_CFG_STRING, NULL, offsetof(struct mon_config, slack_url), .flags = LF_CFG_SECRET,
     .description = "Webhook."},
};
static const lf_config_section_table mon_sections[] = {
    LF_CHECKS_SECTION_TABLE(struct mon_config, checks, n_checks),
};
static const lf_config_table mon_table = {
    "logferry-monitor-test", NULL, mon_options, 1, mon_sections, 1, sizeof(struct mon_config), "test",
};

static void test_config_section(void **st)
{
    (void)st;
    const char *text = "[slack]\nwebhook_url = https://hooks.example/T/B/x\n"
                       "[check.receiver_queue]\nkind = queue\nurl = http://127.0.0.1:8440/v1/queues/sessions\n"
                       "token = s3cret-token\nmax_depth = 1000\nmax_oldest_age = 10m\npending_count = 2\n"
                       "[check.root_disk]\nkind = disk\npath = /\nmin_free = 2GiB\nmin_free_percent = 5\n"
                       "interval = 1m\nreminder_every = 0\n";
    struct mon_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    lf_buf err = LF_BUF_INIT(4096);
    int rc = lf_config_load_string(&mon_table, &cfg, text, "monitor.conf", &err);
    if (rc)
        fail_msg("%s", lf_buf_cstr(&err));
    assert_int_equal(cfg.n_checks, 2);
    lf_check_config *q = &cfg.checks[0], *d = &cfg.checks[1];
    assert_string_equal(q->name, "receiver_queue");
    assert_int_equal(q->kind, LF_CHECK_QUEUE);
    assert_string_equal(q->token, "s3cret-token");
    assert_int_equal(q->max_depth, 1000);
    assert_int_equal(q->max_oldest_age_ms, 600000);
    assert_int_equal(q->max_dlq_depth, 0);
    assert_int_equal(q->pending_count, 2);
    assert_int_equal(q->interval_ms, 30000);
    assert_int_equal(q->reminder_every_ms, 3600000);
    assert_int_equal(q->flap_changes, 6);
    assert_true(q->enabled);
    assert_string_equal(q->metric, LF_CHECK_DEFAULT_METRIC);
    assert_int_equal(lf_check_config_validate(q, &err), 0);
    assert_string_equal(d->name, "root_disk");
    assert_int_equal(d->kind, LF_CHECK_DISK);
    assert_int_equal(d->min_free_bytes, 2ull << 30);
    assert_true(d->min_free_percent == 5.0);
    assert_int_equal(d->interval_ms, 60000);
    assert_int_equal(d->reminder_every_ms, 0);
    assert_int_equal(lf_check_config_validate(d, &err), 0);

    /* the dump masks the token */
    char *dump = NULL;
    size_t dump_len = 0;
    FILE *f = open_memstream(&dump, &dump_len);
    assert_int_equal(lf_config_dump(&mon_table, &cfg, f), 0);
    fclose(f);
    assert_null(strstr(dump, "s3cret-token"));
    assert_non_null(strstr(dump, "[check.receiver_queue]"));
    free(dump);

    /* kind-dependent requirements */
    lf_check_config bad = *d;
    bad.path = "relative";
    lf_buf_reset(&err);
    assert_int_equal(lf_check_config_validate(&bad, &err), LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "[check.root_disk] path: an absolute path is required");
    bad = *d;
    bad.min_free_bytes = 0;
    bad.min_free_percent = 0;
    assert_int_equal(lf_check_config_validate(&bad, NULL), LF_ECONFIG);
    bad = *q;
    bad.url = NULL;
    assert_int_equal(lf_check_config_validate(&bad, NULL), LF_ECONFIG);
    bad = *q;
    bad.timeout_ms = bad.interval_ms;
    assert_int_equal(lf_check_config_validate(&bad, NULL), LF_ECONFIG);
    bad = *q;
    bad.kind = LF_CHECK_PARSER_PROGRESS;
    assert_int_equal(lf_check_config_validate(&bad, NULL), LF_ECONFIG); /* no metrics_url */
    bad.metrics_url = "http://127.0.0.1:8441/metrics";
    assert_int_equal(lf_check_config_validate(&bad, NULL), 0);
    lf_config_free(&mon_table, &cfg);

    /* a typo is an error, and kind is required */
    memset(&cfg, 0, sizeof(cfg));
    lf_buf_reset(&err);
    assert_true(lf_config_load_string(&mon_table, &cfg, "[check.x]\nkind = disk\nmax_dpeth = 3\n", "m.conf", &err) < 0);
    assert_non_null(strstr(lf_buf_cstr(&err), "max_dpeth"));
    lf_config_free(&mon_table, &cfg);
    memset(&cfg, 0, sizeof(cfg));
    lf_buf_reset(&err);
    assert_true(lf_config_load_string(&mon_table, &cfg, "[check.x]\npath = /\n", "m.conf", &err) < 0);
    lf_config_free(&mon_table, &cfg);
    memset(&cfg, 0, sizeof(cfg));
    lf_buf_reset(&err);
    assert_true(lf_config_load_string(&mon_table, &cfg, "[check.x]\nkind = telepathy\n", "m.conf", &err) < 0);
    lf_config_free(&mon_table, &cfg);
    lf_buf_free(&err);
}

/* lf_check_run end to end over loopback HTTP, and the local probes through it. */
static void test_check_run(void **st)
{
    (void)st;
    struct lf_test_http_server *srv = calloc(1, sizeof(*srv));
    assert_non_null(srv);
    srv->body_for_path[0][0] = "/healthz";
    srv->body_for_path[0][1] = "{\"status\":\"ok\"}";
    srv->body_for_path[1][0] = "/v1/queues/sessions";
    srv->body_for_path[1][1] = "{\"depth\":12,\"oldest_age_s\":30,\"dlq_depth\":1}";
    srv->body_for_path[2][0] = "/metrics";
    srv->body_for_path[2][1] = "# TYPE parsed_total counter\nparsed_total 7\n";
    srv->body_for_path[3][0] = "/_cluster/health";
    srv->body_for_path[3][1] = "{\"cluster_name\":\"c\",\"status\":\"red\"}";
    lf_test_http_server_start(srv);
    lf_http_client *http = NULL;
    assert_int_equal(lf_http_client_new(NULL, NULL, &http), 0);
    char u1[96], u2[96], u3[96], u4[96];
    snprintf(u1, sizeof(u1), "http://127.0.0.1:%d/healthz", srv->port);
    snprintf(u2, sizeof(u2), "http://127.0.0.1:%d/v1/queues/sessions", srv->port);
    snprintf(u3, sizeof(u3), "http://127.0.0.1:%d/metrics", srv->port);
    snprintf(u4, sizeof(u4), "http://127.0.0.1:%d/_cluster/health", srv->port);
    lf_check_progress prog = {0};
    lf_check_result r;

    lf_check_config c = base(LF_CHECK_HEALTHZ);
    c.url = u1;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_true(r.ok);
    assert_string_equal(srv->last_auth, ""); /* no token sent where none is configured */

    c = base(LF_CHECK_QUEUE);
    c.url = u2;
    c.token = "worker-token-1";
    c.max_dlq_depth = 0;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_false(r.ok);
    assert_string_equal(r.threshold, "dead letters <= 0");
    assert_string_equal(srv->last_auth, "Bearer worker-token-1");

    c = base(LF_CHECK_PARSER_PROGRESS);
    c.url = u2;
    c.metrics_url = u3;
    c.metric = "parsed_total";
    c.progress_window_ms = 60000;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_true(r.ok);
    assert_true(prog.have_counter);
    assert_true(prog.counter == 7.0);
    lf_check_run(&c, http, &prog, 61000, &r); /* counter still 7 a minute later, 12 queued */
    assert_false(r.ok);

    c = base(LF_CHECK_ELASTICSEARCH);
    c.url = u4;
    c.es_status = LF_ES_YELLOW;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_false(r.ok);
    assert_string_equal(srv->last_auth, "");

    /* with credentials: basic from a password file, then an API key */
    char pwfile[] = "/tmp/lf-monitor-es-pw-XXXXXX";
    int fd = mkstemp(pwfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "open sesame\n", 12), 12);
    close(fd);
    c.es_auth.user = "Aladdin";
    c.es_auth.password_file = pwfile;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_string_equal(srv->last_auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_false(r.ok); /* still red */
    c.es_auth = (lf_es_auth){.api_key = "a2V5aWQ6c2VjcmV0"};
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_string_equal(srv->last_auth, "ApiKey a2V5aWQ6c2VjcmV0");
    /* an unreadable password file: misconfigured, and no request made without it */
    unlink(pwfile);
    c.es_auth = (lf_es_auth){.user = "Aladdin", .password_file = pwfile};
    int before = srv->n_requests;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "misconfigured");
    assert_non_null(strstr(r.message, pwfile));
    assert_int_equal(srv->n_requests, before);

    c = base(LF_CHECK_DISK);
    c.path = "/";
    c.min_free_percent = 0.0001;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_true(r.ok);

    c = base(-1);
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "misconfigured");

    lf_test_http_server_stop(srv);
    free(srv);
    /* nobody listening any more */
    c = base(LF_CHECK_HEALTHZ);
    c.url = u1;
    lf_check_run(&c, http, &prog, 1000, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "unreachable");
    lf_http_client_close(http, NULL, NULL);
}

/* Hostile answers: random bytes and mutated real answers, in buffers without a terminator (ASan
 * catches any read past len). Every evaluation must give a result, never crash. */
static void test_hostile_answers(void **st)
{
    (void)st;
    const char *seeds[] = {
        "{\"depth\":12,\"oldest_age_ms\":30000,\"dlq_depth\":1}",
        "{\"status\":\"ok\"}",
        "{\"cluster_name\":\"c\",\"status\":\"yellow\",\"unassigned_shards\":3}",
        "# TYPE x counter\nlf_parser_sessions_parsed_total{a=\"b}\\\"\"} 12\nlf_parser_sessions_parsed_total 3\n",
    };
    uint32_t x = 2463534242u;
    lf_check_config c = base(LF_CHECK_QUEUE);
    c.max_depth = 5;
    c.max_dlq_depth = 0;
    c.progress_window_ms = 1000;
    lf_check_progress p = {0};
    lf_check_result r;
    for (int i = 0; i < 3000; i++) {
        const char *seed = seeds[i % 4];
        size_t len = strlen(seed);
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        if (i % 3 == 0)
            len = x % 300;
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            if (i % 3 == 0)
                buf[k] = (char)(x & 0xff);
            else
                buf[k] = (x % 8 == 0) ? (char)(x >> 8) : seed[k]; /* mutate one byte in eight */
        }
        if (i % 5 == 0 && len > 2)
            len -= x % len; /* truncated */
        lf_check_http h = {0, 200, buf, len};
        lf_check_eval_queue(&c, &h, &r);
        assert_true(strlen(r.value) < sizeof(r.value));
        lf_check_eval_healthz(&c, &h, &r);
        lf_check_eval_elasticsearch(&c, &h, &r);
        lf_check_eval_parser_progress(&c, &p, &h, &h, 1000 + i, &r);
        double v;
        (void)lf_check_metric_sum(buf, len, "lf_parser_sessions_parsed_total", &v);
        free(buf);
    }
}

/* The MySQL probes against a real private MariaDB: reachability, latency, analytics freshness. */
static void test_mysql_probes_real_server(void **st)
{
    (void)st;
    struct lf_test_mariadb m;
    memset(&m, 0, sizeof(m));
    if (lf_test_mariadb_start(&m) != 0)
        fail_msg("could not start a private MariaDB (mariadb-server installed?)");
    lf_mysql_options mo = lf_test_mariadb_options(&m, "lf_monitor_test");
    lf_mysql *db = NULL;
    int rc = lf_mysql_connect(&mo, &db);
    if (rc)
        fail_msg("connect: %s", lf_strerror(rc));
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS job_runs") >= 0);
    assert_true(lf_mysql_exec(db, "CREATE TABLE job_runs (job VARCHAR(64) NOT NULL, finished_at DATETIME NOT NULL, "
                                  "status VARCHAR(16) NOT NULL)") >= 0);
    assert_true(lf_mysql_exec(db, "INSERT INTO job_runs VALUES "
                                  "('daily_usage', UTC_TIMESTAMP() - INTERVAL 2 HOUR, 'ok'),"
                                  "('daily_usage', UTC_TIMESTAMP() - INTERVAL 30 HOUR, 'ok'),"
                                  "('errors', UTC_TIMESTAMP() - INTERVAL 30 HOUR, 'ok'),"
                                  "('errors', UTC_TIMESTAMP() - INTERVAL 1 HOUR, 'failed')") >= 0);
    lf_mysql_close(db);

    lf_check_config c = base(LF_CHECK_MYSQL);
    c.mysql_host = "127.0.0.1";
    c.mysql_port = m.port;
    c.mysql_user = m.user;
    c.mysql_password = m.password;
    c.mysql_database = "lf_monitor_test";
    c.timeout_ms = 5000;
    c.max_latency_ms = 2000;
    lf_check_result r;
    lf_check_probe_mysql(&c, &r);
    if (!r.ok)
        fail_msg("%s", r.message);
    assert_non_null(strstr(r.value, "SELECT 1 in"));

    c.mysql_password = "wrong";
    lf_check_probe_mysql(&c, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "Access denied"));
    c.mysql_password = m.password;

    c.kind = LF_CHECK_ANALYTICS_FRESHNESS;
    c.query = "SELECT job, TIMESTAMPDIFF(SECOND, MAX(finished_at), UTC_TIMESTAMP()) FROM job_runs "
              "WHERE status = 'ok' GROUP BY job";
    c.max_age_ms = 26 * 3600 * 1000LL;
    char *fresh[] = {"daily_usage", NULL};
    c.jobs = fresh;
    lf_check_probe_freshness(&c, &r);
    if (!r.ok)
        fail_msg("%s", r.message);
    char *both[] = {"daily_usage", "errors", NULL};
    c.jobs = both;
    lf_check_probe_freshness(&c, &r);
    assert_false(r.ok); /* errors' last success is 30 h old; its failed run does not count */
    assert_non_null(strstr(r.value, "errors: 1d 6h ago"));
    char *missing[] = {"retention", NULL};
    c.jobs = missing;
    lf_check_probe_freshness(&c, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "retention: never");
    c.query = "SELECT job FROM job_runs";
    lf_check_probe_freshness(&c, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "must return"));
    c.query = "SELECT nonsense FROM nowhere";
    lf_check_probe_freshness(&c, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.message, "nowhere"));
}

/* GET /v1/sites answers: quiet sites by their own interval or max_quiet; disabled and never-seen
 * sites are not judged; refusals count only new ones since the previous run, for the reasons a site
 * causes. */
static void test_site_quiet(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_SITE_QUIET);
    c.max_quiet_ms = 3600 * 1000;
    char *intervals[] = {"weekly=8d", NULL};
    c.site_intervals = intervals;
    int64_t now = (int64_t)1796601600 * 1000; /* 2026-12-07T00:00:00Z */
    const char *body =
        "{\"sites\":[{\"site\":\"a\",\"state\":\"enabled\",\"last_upload\":\"2026-12-06T23:30:00Z\"},"
        "{\"site\":\"b\",\"state\":\"enabled\",\"last_upload\":\"2026-12-06T21:00:00Z\"},"
        "{\"site\":\"weekly\",\"state\":\"enabled\",\"last_upload\":\"2026-12-01T00:00:00Z\"},"
        "{\"site\":\"off\",\"state\":\"disabled\",\"last_upload\":\"2026-01-01T00:00:00Z\"},"
        "{\"site\":\"new\",\"state\":\"enabled\",\"last_upload\":null}]}";
    lf_check_http h = answer(200, body);
    lf_check_result r;
    lf_check_eval_site_quiet(&c, &h, now, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "1 of 3 sites quiet");
    assert_non_null(strstr(r.message, "b sent nothing for 3h"));
    assert_null(strstr(r.message, "weekly"));
    /* b uploads again: resolved */
    h = answer(200, "{\"sites\":[{\"site\":\"b\",\"state\":\"enabled\",\"last_upload\":\"2026-12-06T23:59:00Z\"}]}");
    lf_check_eval_site_quiet(&c, &h, now, &r);
    assert_true(r.ok);
    /* an answer that is not a site list fails, never passes */
    h = answer(200, "{\"sites\":{}}");
    lf_check_eval_site_quiet(&c, &h, now, &r);
    assert_false(r.ok);
    h = answer(401, "{\"error\":\"unauthorized\"}");
    lf_check_eval_site_quiet(&c, &h, now, &r);
    assert_false(r.ok);
    char site[80];
    assert_int_equal(lf_check_site_interval("acme=2h", site, sizeof site), 7200000);
    assert_string_equal(site, "acme");
    assert_int_equal(lf_check_site_interval("acme", site, sizeof site), 0);
    assert_int_equal(lf_check_site_interval("=2h", site, sizeof site), 0);
    assert_int_equal(lf_check_site_interval("acme=soon", site, sizeof site), 0);
}

static void test_site_refusals(void **st)
{
    (void)st;
    lf_check_config c = base(LF_CHECK_SITE_REFUSALS);
    c.max_refusals = 2;
    lf_check_progress p;
    memset(&p, 0, sizeof p);
    int64_t now = (int64_t)1796601600 * 1000;
    lf_check_result r;
    lf_check_http h = answer(200, "{\"sites\":[{\"site\":\"a\",\"refusals_by_reason\":{\"stale\":5,\"busy\":40},"
                                  "\"last_refusal\":\"2026-12-06T23:00:00Z\"}]}");
    lf_check_eval_site_refusals(&c, &p, &h, now, &r);
    assert_true(r.ok); /* the first run is the baseline */
    h = answer(200, "{\"sites\":[{\"site\":\"a\",\"refusals_by_reason\":{\"stale\":7,\"busy\":90},"
                    "\"last_refusal\":\"2026-12-07T00:00:20Z\"}]}");
    lf_check_eval_site_refusals(&c, &p, &h, now + 30000, &r);
    assert_true(r.ok); /* 2 new, busy not counted: within max_refusals */
    h = answer(200, "{\"sites\":[{\"site\":\"a\",\"refusals_by_reason\":{\"stale\":10},"
                    "\"last_refusal\":\"2026-12-07T00:00:50Z\"},"
                    "{\"site\":\"(unregistered)\",\"refusals_by_reason\":{\"unknown_site\":1},"
                    "\"last_refusal\":\"2026-12-07T00:00:55Z\"}]}");
    lf_check_eval_site_refusals(&c, &p, &h, now + 60000, &r);
    assert_false(r.ok);
    assert_string_equal(r.value, "4 refused since the last check");
    assert_non_null(strstr(r.message, "a (stale 10)"));
    assert_non_null(strstr(r.message, "(unregistered) (unknown_site 1)"));
    lf_check_eval_site_refusals(&c, &p, &h, now + 90000, &r);
    assert_true(r.ok); /* nothing new: resolved */
    char *only[] = {"unknown_site", NULL};
    c.reasons = only;
    c.max_refusals = 0;
    h = answer(200, "{\"sites\":[{\"site\":\"a\",\"refusals_by_reason\":{\"stale\":99},"
                    "\"last_refusal\":\"2026-12-07T00:02:00Z\"},"
                    "{\"site\":\"(unregistered)\",\"refusals_by_reason\":{\"unknown_site\":1}}]}");
    memset(&p, 0, sizeof p);
    lf_check_eval_site_refusals(&c, &p, &h, now, &r);
    lf_check_eval_site_refusals(&c, &p, &h, now + 30000, &r);
    assert_true(r.ok); /* stale is not among the reasons */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_queue_thresholds),
        cmocka_unit_test(test_elasticsearch),
        cmocka_unit_test(test_metric_sum),
        cmocka_unit_test(test_parser_progress),
        cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_mysql_eval),
        cmocka_unit_test(test_mysql_probe_unreachable_and_silent),
        cmocka_unit_test(test_disk),
        cmocka_unit_test(test_rules_and_observation),
        cmocka_unit_test(test_config_section),
        cmocka_unit_test(test_check_run),
        cmocka_unit_test(test_hostile_answers),
        cmocka_unit_test(test_site_quiet),
        cmocka_unit_test(test_site_refusals),
        cmocka_unit_test(test_mysql_probes_real_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
