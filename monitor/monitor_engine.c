/* The monitor's engine: see monitor_engine.h. */
#include "monitor_engine.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_log.h"
#include "slack_send.h"

#define PRUNE_EVERY_MS (3600LL * 1000)
#define KEEP_HISTORY_MS (30LL * 86400 * 1000)

struct eng_check {
    lf_monitor_engine *eng;
    lf_check_config cfg; /* deep copy */
    lf_alert_rules rules;
    uv_timer_t timer;
    uv_work_t work;
    bool running;
    lf_http_client *http; /* used by the pool thread running this check only */
    lf_check_progress progress;
    lf_check_result result;
    int64_t run_at_ms;
};

struct lf_monitor_engine {
    uv_loop_t *loop;
    struct eng_check *checks;
    size_t n_checks;
    lf_outbox *outbox; /* loop thread: recording observations, looking at what is due */
    char *outbox_path;
    lf_outbox_options outbox_opts;
    char host[256];
    char *webhook_url;
    bool any_webhook; /* the default webhook, or a check's own */
    char *dashboard_url;
    char *heartbeat_url;
    long slack_timeout_ms;
    uint64_t heartbeat_interval_ms;
    uint64_t delivery_poll_ms;

    /* delivery: one at a time on the pool, with its own outbox connection */
    uv_timer_t delivery_timer;
    uv_work_t delivery_work;
    bool delivering;
    lf_outbox *delivery_outbox;
    lf_http_client *delivery_http;
    int delivery_result;

    uv_timer_t heartbeat_timer;
    uv_work_t heartbeat_work;
    bool heartbeating;
    lf_http_client *heartbeat_http;
    int heartbeat_result;

    lf_monitor_engine_stats stats;
    int64_t last_prune_ms;
    bool stopping;
    int pending; /* open handles + work in flight; freed at 0 once stopping */
    void (*done)(void *arg);
    void *done_arg;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------------- */
/* Configuration copies */

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = lf_strdup(src);
    return *dst ? 0 : -ENOMEM;
}

/* The string fields of a check, secrets marked: the copy owns each of them. */
#define CHECK_STRINGS(c)                                                                                       \
    {&(c)->name, &(c)->url, &(c)->token, &(c)->metrics_url, &(c)->metric, &(c)->mysql_host, &(c)->mysql_socket,  \
     &(c)->mysql_user, &(c)->mysql_password, &(c)->mysql_database, &(c)->query, &(c)->path, &(c)->runbook_url,   \
     &(c)->webhook_url, &(c)->mysql_tls.ca, &(c)->mysql_tls.cert, &(c)->mysql_tls.key,                            \
     &(c)->es_auth.user, &(c)->es_auth.password, &(c)->es_auth.password_file, &(c)->es_auth.api_key,            \
     &(c)->es_auth.api_key_file, &(c)->es_auth.ca_file}

static void free_list(char ***list)
{
    if (*list) {
        for (char **j = *list; *j; j++)
            lf_free(*j);
        lf_free(*list);
        *list = NULL;
    }
}

static int dup_list(char ***dst, char *const *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    size_t n = 0;
    while (src[n])
        n++;
    *dst = lf_calloc(n + 1, sizeof(char *));
    if (!*dst)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = dup_str(&(*dst)[i], src[i]);
    return rc;
}

static void check_config_free(lf_check_config *c)
{
    char **strs[] = CHECK_STRINGS(c);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (*strs[i] && (strs[i] == &c->token || strs[i] == &c->mysql_password || strs[i] == &c->es_auth.password ||
                         strs[i] == &c->es_auth.api_key || strs[i] == &c->webhook_url))
            memset(*strs[i], 0, strlen(*strs[i])); /* secrets do not linger */
        lf_free(*strs[i]);
        *strs[i] = NULL;
    }
    free_list(&c->jobs);
    free_list(&c->site_intervals);
    free_list(&c->reasons);
}

/* A deep copy: the engine outlives a reload that frees the configuration it was made from. */
static int check_config_dup(lf_check_config *dst, const lf_check_config *src)
{
    *dst = *src;
    char **d[] = CHECK_STRINGS(dst);
    lf_check_config *s_ = (lf_check_config *)src;
    char **s[] = CHECK_STRINGS(s_);
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        *d[i] = NULL;
    dst->jobs = dst->site_intervals = dst->reasons = NULL;
    int rc = 0;
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]) && rc == 0; i++)
        rc = dup_str(d[i], *s[i]);
    rc = rc ? rc : dup_list(&dst->jobs, src->jobs);
    rc = rc ? rc : dup_list(&dst->site_intervals, src->site_intervals);
    rc = rc ? rc : dup_list(&dst->reasons, src->reasons);
    if (rc)
        check_config_free(dst);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Teardown */

static void engine_free(lf_monitor_engine *eng)
{
    for (size_t i = 0; i < eng->n_checks; i++) {
        if (eng->checks[i].http)
            lf_http_client_close(eng->checks[i].http, NULL, NULL);
        check_config_free(&eng->checks[i].cfg);
    }
    lf_free(eng->checks);
    if (eng->delivery_http)
        lf_http_client_close(eng->delivery_http, NULL, NULL);
    if (eng->heartbeat_http)
        lf_http_client_close(eng->heartbeat_http, NULL, NULL);
    lf_outbox_close(eng->delivery_outbox);
    lf_outbox_close(eng->outbox);
    lf_free(eng->outbox_path);
    if (eng->webhook_url)
        memset(eng->webhook_url, 0, strlen(eng->webhook_url));
    lf_free(eng->webhook_url);
    lf_free(eng->dashboard_url);
    lf_free(eng->heartbeat_url);
    void (*done)(void *) = eng->done;
    void *arg = eng->done_arg;
    lf_free(eng);
    if (done)
        done(arg);
}

static void release(lf_monitor_engine *eng)
{
    if (--eng->pending == 0 && eng->stopping)
        engine_free(eng);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* ---------------------------------------------------------------------------------------------- */
/* Delivery */

/* The runbook of a check, from the engine's own copy of the configuration (read on the delivery
 * thread: the copy does not change while the engine lives). */
static const char *runbook_of(void *arg, const char *check)
{
    const lf_monitor_engine *eng = arg;
    for (size_t i = 0; i < eng->n_checks; i++)
        if (strcmp(eng->checks[i].cfg.name, check) == 0)
            return eng->checks[i].cfg.runbook_url;
    return NULL;
}

static const char *route_of(void *arg, const char *check)
{
    const lf_monitor_engine *eng = arg;
    for (size_t i = 0; i < eng->n_checks; i++)
        if (strcmp(eng->checks[i].cfg.name, check) == 0)
            return eng->checks[i].cfg.webhook_url;
    return NULL;
}

static void delivery_run(uv_work_t *w)
{
    lf_monitor_engine *eng = w->data;
    if (!eng->delivery_outbox) {
        eng->delivery_result = lf_outbox_open(eng->outbox_path, &eng->outbox_opts, &eng->delivery_outbox);
        if (eng->delivery_result < 0)
            return;
    }
    lf_slack_links links = {eng->dashboard_url, runbook_of, route_of, eng};
    lf_outbox_set_links(eng->delivery_outbox, &links);
    lf_slack_sender sender = {eng->delivery_http, eng->webhook_url, eng->slack_timeout_ms};
    /* bounded per run: the loop looks again at the next poll */
    eng->delivery_result = lf_outbox_deliver_due(eng->delivery_outbox, wall_ms(), eng->host, lf_slack_send, &sender, 5);
}

static void delivery_after(uv_work_t *w, int status)
{
    lf_monitor_engine *eng = w->data;
    eng->delivering = false;
    if (eng->delivery_outbox)
        eng->stats.delivery_failures = lf_outbox_delivery_failures(eng->delivery_outbox);
    if (status == 0) {
        if (eng->delivery_result > 0)
            eng->stats.messages_sent += (uint64_t)eng->delivery_result;
        else if (eng->delivery_result < 0)
            LF_ERROR("monitor", "delivery: %s", lf_strerror(eng->delivery_result));
    }
    int64_t n = 0;
    if (!eng->stopping && lf_outbox_undelivered(eng->outbox, &n) == 0)
        eng->stats.undelivered = n;
    release(eng);
}

static void maybe_deliver(lf_monitor_engine *eng)
{
    if (eng->stopping || eng->delivering || !eng->any_webhook)
        return;
    int64_t due = 0;
    int rc = lf_outbox_next_due(eng->outbox, &due);
    if (rc < 0 || due > wall_ms())
        return;
    eng->delivering = true;
    eng->delivery_work.data = eng;
    if (uv_queue_work(eng->loop, &eng->delivery_work, delivery_run, delivery_after) == 0)
        eng->pending++;
    else
        eng->delivering = false;
}

static void on_delivery_timer(uv_timer_t *t)
{
    lf_monitor_engine *eng = t->data;
    int64_t n = 0;
    if (lf_outbox_undelivered(eng->outbox, &n) == 0)
        eng->stats.undelivered = n;
    int64_t now = wall_ms();
    if (now - eng->last_prune_ms >= PRUNE_EVERY_MS) {
        /* delivered notifications and ended silences are history: keep a month of it */
        eng->last_prune_ms = now;
        int removed = lf_outbox_prune(eng->outbox, now - KEEP_HISTORY_MS);
        if (removed > 0)
            LF_INFO("monitor", "pruned %d old outbox row(s)", removed);
    }
    maybe_deliver(eng);
}

/* ---------------------------------------------------------------------------------------------- */
/* Heartbeat */

static void heartbeat_run(uv_work_t *w)
{
    lf_monitor_engine *eng = w->data;
    eng->heartbeat_result = lf_slack_heartbeat(eng->heartbeat_http, eng->heartbeat_url, 10000);
}

static void heartbeat_after(uv_work_t *w, int status)
{
    lf_monitor_engine *eng = w->data;
    eng->heartbeating = false;
    if (status == 0) {
        if (eng->heartbeat_result == 0) {
            eng->stats.heartbeats_ok++;
        } else {
            eng->stats.heartbeats_failed++;
            LF_WARN("monitor", "heartbeat %s failed: %s", eng->heartbeat_url, lf_strerror(eng->heartbeat_result));
        }
    }
    release(eng);
}

static void on_heartbeat_timer(uv_timer_t *t)
{
    lf_monitor_engine *eng = t->data;
    if (eng->stopping || eng->heartbeating)
        return;
    eng->heartbeating = true;
    eng->heartbeat_work.data = eng;
    if (uv_queue_work(eng->loop, &eng->heartbeat_work, heartbeat_run, heartbeat_after) == 0)
        eng->pending++;
    else
        eng->heartbeating = false;
}

/* ---------------------------------------------------------------------------------------------- */
/* Checks */

static void check_run_work(uv_work_t *w)
{
    struct eng_check *c = w->data;
    lf_check_run(&c->cfg, c->http, &c->progress, c->run_at_ms, &c->result);
}

static void check_after(uv_work_t *w, int status)
{
    struct eng_check *c = w->data;
    lf_monitor_engine *eng = c->eng;
    c->running = false;
    if (status == 0 && !eng->stopping) {
        eng->stats.checks_run++;
        if (!c->result.ok)
            eng->stats.checks_failed++;
        lf_alert_observation obs;
        /* the time the probe started: the state machine's clock, increasing per check */
        lf_check_observation(&c->result, c->run_at_ms, &obs);
        int n = 0;
        int rc = lf_outbox_observe(eng->outbox, c->cfg.name, &c->rules, &obs, &n);
        if (rc < 0) {
            eng->stats.record_errors++;
            LF_ERROR("monitor", "check %s: recording the result failed: %s", c->cfg.name, lf_strerror(rc));
        } else if (n > 0) {
            eng->stats.notifications += (uint64_t)n;
            maybe_deliver(eng);
        }
        LF_DEBUG("monitor", "check %s: %s (%s)", c->cfg.name, c->result.ok ? "ok" : "FAILED", c->result.message);
    }
    release(eng);
}

static void on_check_timer(uv_timer_t *t)
{
    struct eng_check *c = t->data;
    lf_monitor_engine *eng = c->eng;
    if (eng->stopping)
        return;
    if (c->running) {
        LF_WARN("monitor", "check %s: previous run still in progress; skipped", c->cfg.name);
        return;
    }
    c->running = true;
    c->run_at_ms = wall_ms();
    c->work.data = c;
    if (uv_queue_work(eng->loop, &c->work, check_run_work, check_after) == 0)
        eng->pending++;
    else
        c->running = false;
}

/* ---------------------------------------------------------------------------------------------- */

static int start_timer(lf_monitor_engine *eng, uv_timer_t *t, void *data, uv_timer_cb cb, uint64_t first,
                       uint64_t repeat)
{
    int rc = uv_timer_init(eng->loop, t);
    if (rc)
        return rc;
    eng->pending++;
    t->data = data;
    return uv_timer_start(t, cb, first, repeat);
}

static int copy_opt(char **dst, const char *src)
{
    return dup_str(dst, src && src[0] ? src : NULL);
}

int lf_monitor_engine_start(const lf_monitor_engine_opts *o, lf_monitor_engine **out)
{
    if (!o || !o->loop || !o->outbox_path || !o->outbox_path[0] || (o->n_checks && !o->checks))
        return -EINVAL;
    lf_monitor_engine *eng = lf_calloc(1, sizeof(*eng));
    if (!eng)
        return -ENOMEM;
    eng->loop = o->loop;
    eng->outbox_opts = o->outbox;
    eng->slack_timeout_ms = o->slack_timeout_ms;
    eng->heartbeat_interval_ms = o->heartbeat_interval_ms ? o->heartbeat_interval_ms : 60000;
    eng->delivery_poll_ms = o->delivery_poll_ms ? o->delivery_poll_ms : 1000;
    if (o->host && o->host[0])
        snprintf(eng->host, sizeof(eng->host), "%s", o->host);
    else if (gethostname(eng->host, sizeof(eng->host) - 1) != 0)
        snprintf(eng->host, sizeof(eng->host), "unknown host");
    int rc = 0;
    if ((rc = copy_opt(&eng->outbox_path, o->outbox_path)) || (rc = copy_opt(&eng->webhook_url, o->webhook_url)) ||
        (rc = copy_opt(&eng->dashboard_url, o->dashboard_url)) ||
        (rc = copy_opt(&eng->heartbeat_url, o->heartbeat_url)))
        goto fail;
    if ((rc = lf_outbox_open(eng->outbox_path, &eng->outbox_opts, &eng->outbox)) < 0)
        goto fail;
    eng->checks = lf_calloc(o->n_checks ? o->n_checks : 1, sizeof(*eng->checks));
    if (!eng->checks) {
        rc = -ENOMEM;
        goto fail;
    }
    lf_http_client_opts hopts;
    lf_http_client_opts_default(&hopts);
    hopts.max_attempts = 1;
    hopts.max_connections = 2;
    for (size_t i = 0; i < o->n_checks; i++) {
        struct eng_check *c = &eng->checks[i];
        c->eng = eng;
        if ((rc = check_config_dup(&c->cfg, &o->checks[i])) < 0)
            goto fail;
        eng->n_checks = i + 1;
        lf_check_rules(&c->cfg, &c->rules);
        if ((rc = lf_http_client_new(NULL, &hopts, &c->http)) < 0)
            goto fail;
    }
    eng->any_webhook = eng->webhook_url != NULL;
    for (size_t i = 0; i < eng->n_checks; i++)
        eng->any_webhook |= eng->checks[i].cfg.webhook_url != NULL;
    if ((eng->any_webhook && (rc = lf_http_client_new(NULL, &hopts, &eng->delivery_http)) < 0) ||
        (eng->heartbeat_url && (rc = lf_http_client_new(NULL, &hopts, &eng->heartbeat_http)) < 0))
        goto fail;

    /* from here on, handles exist: failures go through stop */
    for (size_t i = 0; i < eng->n_checks; i++) {
        struct eng_check *c = &eng->checks[i];
        if (!c->cfg.enabled)
            continue;
        uint64_t first = eng->n_checks > 1 ? (uint64_t)(i * 1000 / eng->n_checks) : 0;
        if ((rc = start_timer(eng, &c->timer, c, on_check_timer, first, c->cfg.interval_ms)) < 0)
            break;
    }
    if (rc == 0)
        rc = start_timer(eng, &eng->delivery_timer, eng, on_delivery_timer, 0, eng->delivery_poll_ms);
    if (rc == 0 && eng->heartbeat_url)
        rc = start_timer(eng, &eng->heartbeat_timer, eng, on_heartbeat_timer, 0, eng->heartbeat_interval_ms);
    if (rc < 0) {
        LF_ERROR("monitor", "starting the engine failed: %s", lf_strerror(rc));
        lf_monitor_engine_stop(eng, NULL, NULL);
        return rc;
    }
    LF_INFO("monitor", "watching %zu check(s) as %s; outbox %s%s", eng->n_checks, eng->host, eng->outbox_path,
            eng->any_webhook ? "" : " (no webhook configured: notifications wait in the outbox)");
    *out = eng;
    return 0;
fail:
    engine_free(eng);
    return rc;
}

static void close_timer(lf_monitor_engine *eng, uv_timer_t *t)
{
    if (t->loop && !uv_is_closing((uv_handle_t *)t)) {
        t->data = eng;
        uv_close((uv_handle_t *)t, on_handle_closed);
    }
}

void lf_monitor_engine_stop(lf_monitor_engine *eng, void (*done)(void *arg), void *arg)
{
    if (!eng || eng->stopping)
        return;
    eng->stopping = true;
    eng->done = done;
    eng->done_arg = arg;
    eng->pending++; /* held until every close and cancel is issued */
    for (size_t i = 0; i < eng->n_checks; i++) {
        close_timer(eng, &eng->checks[i].timer);
        if (eng->checks[i].running)
            uv_cancel((uv_req_t *)&eng->checks[i].work); /* only succeeds before it started */
    }
    close_timer(eng, &eng->delivery_timer);
    close_timer(eng, &eng->heartbeat_timer);
    release(eng);
}

void lf_monitor_engine_stats_get(const lf_monitor_engine *eng, lf_monitor_engine_stats *out)
{
    *out = eng->stats;
}
