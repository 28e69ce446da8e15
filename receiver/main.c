/* logferry-receiver: entry point. The daemon's start hook opens the store, the index, the keyring,
 * the site and token tables, completes half-done uploads (recovery.c), opens the durable queue and
 * registers the route files. A new route file adds one line to route_files[].
 *
 * With backend = jetstream it also opens the state receivers share (lf_jskv.h): the site and token
 * tables follow the buckets LF_SITES and LF_TOKENS (the files are not read), and new sessions are
 * claimed in LF_SESSIONS (upload.c). A receiver that cannot read the buckets does not start: an
 * empty table taken for "no sites" would refuse every upload, or worse, keep a revoked token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "commands.h"
#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_jskv.h"
#include "lf_log.h"
#include "read_routes.h"
#include "receiver.h"
#include "site_figures.h"

static int (*const route_files[])(lf_receiver *r) = {
    lf_receiver_upload_routes,
    lf_receiver_session_routes,
    lf_receiver_queue_routes,
    lf_receiver_read_routes,
    lf_receiver_site_routes,
    lf_receiver_probe_routes,
};

static void on_stats(lf_queue_op_req *op, int status)
{
    lf_receiver *r = op->data;
    r->stats_in_flight = false;
    if (status == 0)
        r->queue_depth = op->stats.depth;
    lf_free(op);
}

static void refresh_pressure(lf_receiver *r)
{
    int64_t free_b = lf_store_fs_free_bytes(r->cfg->store_dir);
    r->free_disk = free_b >= 0 ? (uint64_t)free_b : 0;
    if (r->jsq)
        lf_receiver_js_refresh_depth(r);
    if (r->queue && !r->stats_in_flight) {
        lf_queue_op_req *op = lf_calloc(1, sizeof *op);
        if (op) {
            op->data = r;
            if (lf_queue_stats(r->queue, op, r->cfg->queue_name, on_stats) == 0)
                r->stats_in_flight = true;
            else
                lf_free(op);
        }
    }
}

static void on_pressure_timer(uv_timer_t *t)
{
    lf_receiver *r = t->data;
    refresh_pressure(r);
    int rc = lf_site_figures_flush(r->figures);
    if (rc != 0)
        LF_WARN("receiver", "cannot write the sites' refusal counts to the index (kept, retried): %s",
                lf_strerror(rc));
}

static double gauge_depth(void *arg)
{
    return (double)((lf_receiver *)arg)->queue_depth;
}

static double gauge_free(void *arg)
{
    return (double)((lf_receiver *)arg)->free_disk;
}

static enum lf_health health_store(lf_service *svc, void *arg, lf_buf *detail)
{
    (void)svc;
    lf_receiver *r = arg;
    if (r->cfg->min_free_disk && r->free_disk < r->cfg->min_free_disk) {
        lf_buf_msgf(detail, "store has %llu bytes free, below limits.min_free_disk",
                       (unsigned long long)r->free_disk);
        return LF_HEALTH_DEGRADED;
    }
    if (r->queue_depth >= r->cfg->max_queue_depth) {
        lf_buf_msgf(detail, "sessions queue depth %llu at limits.max_queue_depth",
                       (unsigned long long)r->queue_depth);
        return LF_HEALTH_DEGRADED;
    }
    if (r->jsq && !lf_jetstream_connected(r->js)) {
        lf_buf_msgf(detail, "JetStream unreachable: uploads get 503");
        return LF_HEALTH_DEGRADED;
    }
    lf_buf_msgf(detail, "ok");
    return LF_HEALTH_OK;
}

/* The shared buckets: stopped before the connection they use closes. */
static void shared_close(lf_receiver *r)
{
    lf_jskv_mirror_stop(r->sites_mirror);
    lf_jskv_mirror_stop(r->tokens_mirror);
    r->sites_mirror = r->tokens_mirror = NULL;
    r->sites.mirror = NULL;
    r->tokens.mirror = NULL;
    lf_jskv_close(r->kv_sites);
    lf_jskv_close(r->kv_tokens);
    lf_jskv_close(r->kv_sessions);
    r->kv_sites = r->kv_tokens = r->kv_sessions = NULL;
}

/* How long start-up waits for a bucket's values before it refuses to start. */
#define SHARED_READ_TIMEOUT_MS 10000
static int shared_open(lf_receiver *r)
{
    const struct lf_receiver_config *cfg = r->cfg;
    if (cfg->advertise_url && *cfg->advertise_url) {
        snprintf(r->node, sizeof r->node, "%s", cfg->advertise_url);
    } else {
        char host[256] = "localhost";
        if (gethostname(host, sizeof host - 1) != 0)
            snprintf(host, sizeof host, "localhost");
        snprintf(r->node, sizeof r->node, "%s:%s", host, cfg->index_path);
    }
    int replicas = (int)cfg->js.replicas;
    int rc = lf_index_receiver_id(r->index, r->node_id, sizeof r->node_id);
    if (rc != 0) {
        LF_ERROR("receiver", "cannot read this receiver's id from %s: %s", cfg->index_path, lf_strerror(rc));
        return rc;
    }
    lf_buf err = LF_BUF_INIT(512);
    int64_t deadline = lf_receiver_start_deadline();
    while ((rc = lf_jskv_open(r->js, LF_JSKV_SITES, replicas, &r->kv_sites, &err)) != 0 &&
           lf_receiver_retry_start(rc, deadline, LF_JSKV_SITES, &err))
        ;
    while (rc == 0 && (rc = lf_jskv_open(r->js, LF_JSKV_TOKENS, replicas, &r->kv_tokens, &err)) != 0 &&
           lf_receiver_retry_start(rc, deadline, LF_JSKV_TOKENS, &err))
        ;
    while (rc == 0 && (rc = lf_jskv_open(r->js, LF_JSKV_SESSIONS, replicas, &r->kv_sessions, &err)) != 0 &&
           lf_receiver_retry_start(rc, deadline, LF_JSKV_SESSIONS, &err))
        ;
    while (rc == 0 && (rc = lf_jskv_mirror_start(r->kv_sites, SHARED_READ_TIMEOUT_MS, &r->sites_mirror, &err)) != 0 &&
           lf_receiver_retry_start(rc, deadline, LF_JSKV_SITES, &err))
        ;
    while (rc == 0 && (rc = lf_jskv_mirror_start(r->kv_tokens, SHARED_READ_TIMEOUT_MS, &r->tokens_mirror, &err)) != 0 &&
           lf_receiver_retry_start(rc, deadline, LF_JSKV_TOKENS, &err))
        ;
    if (rc != 0) {
        LF_ERROR("receiver", "cannot read the shared sites, tokens and session index on JetStream (%s): %s; "
                 "not starting without them", lf_strerror(rc), lf_buf_cstr(&err));
        lf_buf_free(&err);
        return rc;
    }
    lf_buf_free(&err);
    lf_sites_follow(&r->sites, r->sites_mirror);
    lf_tokens_follow(&r->tokens, r->tokens_mirror);
    if (r->sites.count == 0)
        LF_WARN("receiver", "no site in %s: every upload is refused until `sites add` (or `sites import`, which "
                "copies %s)", LF_JSKV_SITES, r->cfg->sites_file);
    /* rows a crash or a failed claim left "claiming" */
    lf_receiver_settle_claims(r);
    LF_INFO("receiver", "sites, tokens and session claims shared on JetStream as %s (id %s)", r->node, r->node_id);
    return 0;
}

static void release(lf_receiver *r)
{
    lf_receiver_flush_marks(r);
    lf_read_routes_free(r->read_routes);
    lf_site_figures_free(r->figures); /* flushes into the index, closed below */
    if (r->store)
        r->store->ops->close(r->store);
    lf_index_close(r->index);
    lf_receiver_keys_close(&r->keys);
    shared_close(r);
    lf_sites_close(&r->sites);
    lf_tokens_close(&r->tokens);
    lf_receiver_js_close(r);
    lf_free(r);
}

static int register_metrics(lf_receiver *r)
{
    lf_metrics *m = r->metrics;
    const char *h = "Session uploads by outcome";
    r->up_stored = lf_metrics_counter(m, "lf_receiver_uploads_total", h, "outcome=\"stored\"");
    r->up_duplicate = lf_metrics_counter(m, "lf_receiver_uploads_total", h, "outcome=\"duplicate\"");
    r->up_conflict = lf_metrics_counter(m, "lf_receiver_uploads_total", h, "outcome=\"conflict\"");
    r->up_rejected = lf_metrics_counter(m, "lf_receiver_uploads_total", h, "outcome=\"rejected\"");
    r->up_failed = lf_metrics_counter(m, "lf_receiver_uploads_total", h, "outcome=\"failed\"");
    r->bytes_received = lf_metrics_counter(m, "lf_receiver_stored_bytes_total",
                                           "Bytes of newly stored sessions (plaintext zip)", NULL);
    r->g_active = lf_metrics_gauge(m, "lf_receiver_uploads_in_progress", "Uploads being verified and stored", NULL);
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    r->h_upload_seconds = lf_metrics_histogram(m, "lf_receiver_upload_seconds",
                                               "Time from a complete upload body to the answer", NULL, bounds,
                                               sizeof bounds / sizeof bounds[0]);
    int rc = lf_metrics_gauge_fn(m, "lf_receiver_sessions_queue_depth", "Visible messages on the sessions queue",
                                 NULL, gauge_depth, r);
    rc = rc ? rc
            : lf_metrics_gauge_fn(m, "lf_receiver_store_free_bytes", "Free bytes on the store's file system", NULL,
                                  gauge_free, r);
    /* every known rejection reason shows up as 0 before it first happens */
    static const char *const reasons[] = {"content_type", "bad_id", "too_large", "missing_signature",
                                          "malformed_signature", "unknown_site", "site_disabled", "stale",
                                          "bad_signature", "busy", "queue_full", "disk_low", "bad_zip",
                                          "zip_limit", "bad_manifest", "content_mismatch", "id_mismatch",
                                          "site_mismatch", "conflict", "in_progress", "storage_full",
                                          "storage_error", "queue_unavailable"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reasons[i]);
        lf_metrics_counter(m, "lf_receiver_rejections_total", "Requests refused, by reason", labels);
    }
    return rc;
}

/* After the queue is open (either backend): metrics, routes, health check, timers. Releases r when
 * it fails. */
static int start_serving(lf_receiver *r)
{
    const struct lf_receiver_config *cfg = r->cfg;
    int rc = register_metrics(r);
    if (rc != 0)
        LF_ERROR("receiver", "cannot register the metrics: %s", lf_strerror(rc));
    for (size_t i = 0; rc == 0 && i < sizeof route_files / sizeof route_files[0]; i++)
        if ((rc = route_files[i](r)) != 0)
            LF_ERROR("receiver", "cannot register routes: %s", lf_strerror(rc));
    if (rc == 0 && (rc = lf_service_add_check(r->svc, "store", health_store, r)) != 0)
        LF_ERROR("receiver", "cannot add the store's health check: %s", lf_strerror(rc));
    if (rc != 0) {
        if (r->queue)
            lf_queue_close(r->queue, NULL);
        r->queue = NULL;
        release(r);
        return rc;
    }
    uv_timer_init(r->loop, &r->pressure_timer);
    r->pressure_timer.data = r;
    uv_timer_start(&r->pressure_timer, on_pressure_timer, 1000, 1000);
    r->pressure_timer_on = true;
    refresh_pressure(r);
    if (r->jsq)
        lf_receiver_js_start_sweep(r);
    lf_service_set_user(r->svc, r);
    LF_INFO("receiver", "store %s (%s), queue %s", cfg->store_dir, r->store->ops->name,
            r->jsq ? "on JetStream" : cfg->queue_path);
    return 0;
}

static int receiver_start(lf_service *svc)
{
    const struct lf_receiver_config *cfg = lf_service_config_data(svc);
    lf_fail_from_env();
    /* the pool starts with the first uv_queue_work, which comes after this */
    char threads[24];
    snprintf(threads, sizeof threads, "%llu", (unsigned long long)cfg->upload_threads);
    setenv("UV_THREADPOOL_SIZE", threads, 0);
    int rc = lf_crypto_init();
    if (rc != 0)
        return rc;
    lf_receiver *r = lf_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->svc = svc;
    r->loop = lf_service_loop(svc);
    r->cfg = cfg;
    r->metrics = lf_service_metrics(svc);
    r->release_cb = release;
    char err[512] = "";
    if ((rc = lf_receiver_store_open(cfg, true, &r->store, err, sizeof err)) != 0) {
        LF_ERROR("receiver", "store: %s", err);
        goto fail;
    }
    if ((rc = lf_index_open(cfg->index_path, &r->index, err, sizeof err)) != 0) {
        LF_ERROR("receiver", "index: %s", err);
        goto fail;
    }
    if ((rc = lf_site_figures_new(r->metrics, r->index, &r->figures)) != 0) {
        LF_ERROR("receiver", "index: reading the sites' figures: %s", lf_strerror(rc));
        goto fail;
    }
    if ((rc = lf_receiver_keys_open(&r->keys, cfg->keys_dir, true, err, sizeof err)) != 0) {
        LF_ERROR("receiver", "keys: %s", err);
        goto fail;
    }
    lf_buf why = LF_BUF_INIT(512);
    if ((rc = lf_sites_open(&r->sites, cfg->sites_file, &why)) != 0 ||
        (rc = lf_tokens_open(&r->tokens, cfg->tokens_file, cfg->token_key_file, true, &why)) != 0) {
        LF_ERROR("receiver", "%s", lf_buf_cstr(&why));
        lf_buf_free(&why);
        goto fail;
    }
    lf_buf_free(&why);
    bool jetstream = cfg->js.backend == LF_QUEUE_BACKEND_JETSTREAM;
    if (jetstream && ((rc = lf_receiver_js_open(r)) != 0 || (rc = shared_open(r)) != 0))
        goto fail;
    if ((rc = lf_receiver_recover(cfg, r->store, r->index, &r->keys, r->jsq)) != 0)
        goto fail;
    if (jetstream) {
        lf_receiver_settle_claims(r); /* blobs recovery found without a row are indexed "claiming" */
        lf_receiver_backfill_claims(r, 1000);
        return start_serving(r);
    }
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.max_receives = (uint32_t)cfg->max_receives;
    if ((rc = lf_queue_open(r->loop, cfg->queue_path, &opt, &r->queue)) != 0) {
        LF_ERROR("receiver", "cannot open the queue store %s: %s", cfg->queue_path, lf_strerror(rc));
        goto fail;
    }
    lf_queue_set_data(r->queue, r);
    return start_serving(r);
fail:
    release(r);
    return rc;
}

static void on_queue_closed(lf_queue *q)
{
    lf_receiver *r = lf_queue_data(q);
    r->release_pending = true; /* now, or when the running mark job or a closing timer ends */
    lf_receiver_job_done(r);
}

static void receiver_stop(lf_service *svc)
{
    lf_receiver *r = lf_service_user(svc);
    if (!r)
        return;
    r->stopping = true;
    lf_service_set_user(svc, NULL);
    if (r->pressure_timer_on) {
        uv_timer_stop(&r->pressure_timer);
        lf_receiver_close_handle(r, (uv_handle_t *)&r->pressure_timer);
        r->pressure_timer_on = false;
    }
    lf_receiver_js_stop_sweep(r);
    lf_queue *q = r->queue;
    r->queue = NULL;
    if (q) {
        lf_queue_close(q, on_queue_closed);
    } else {
        r->release_pending = true; /* now, or when the running mark or sweep job ends */
        lf_receiver_job_done(r);
    }
}

/* What start-up needs (lf_service_def.preflight): the directories it writes and the keyring, which
 * must load when it exists (start-up makes the first key of an empty one), and the [mysql] TLS files
 * of the read routes, and the JetStream files with backend = jetstream. */
static void receiver_preflight(const void *config, lf_preflight *pf)
{
    const struct lf_receiver_config *c = config;
    if (c->store_backend == LF_STORE_BACKEND_FILESYSTEM)
        lf_preflight_dir(pf, "store", "dir", c->store_dir, true, true);
    else
        lf_preflight_url(pf, "store", "es_url", c->es_url);
    lf_preflight_file(pf, "store", "index_path", c->index_path, true);
    if (c->js.backend == LF_QUEUE_BACKEND_EMBEDDED)
        lf_preflight_file(pf, "queue", "path", c->queue_path, true);
    lf_jsconfig_preflight(pf, &c->js);
    lf_preflight_file(pf, "auth", "sites_file", c->sites_file, true);
    lf_preflight_file(pf, "auth", "tokens_file", c->tokens_file, true);
    lf_preflight_file(pf, "auth", "token_key_file", c->token_key_file, true);
    lf_mysql_tls_preflight(pf, "mysql", "", &c->mysql_tls);
    struct stat st;
    if (c->keys_dir && stat(c->keys_dir, &st) == 0) {
        lf_preflight_dir(pf, "store", "keys_dir", c->keys_dir, true, false);
        lf_receiver_keys keys;
        char err[512] = "";
        if (access(c->keys_dir, R_OK | X_OK) == 0 && lf_crypto_init() == 0 && lf_receiver_keys_open(&keys, c->keys_dir, false, err, sizeof err) == 0)
            lf_receiver_keys_close(&keys);
        else if (*err)
            lf_preflight_fail(pf, "store", "keys_dir", "%s", err);
    } else {
        lf_preflight_dir(pf, "store", "keys_dir", c->keys_dir, true, true);
    }
}

static lf_service_def receiver = {
    .program = "logferry-receiver",
    .summary = "The central HTTP API: verifies and stores uploaded sessions, queues them for the parsers "
               "and answers queries.",
    .description = "Sites upload each session as a signed zip (PUT /v1/sessions/ID). The receiver checks the "
                   "signature, the zip and its manifest, encrypts the session with the current key of its "
                   "keyring and stores it, and queues its id for the parsers before it answers: a 2xx means "
                   "the session is durable and will be parsed. A repeated upload of the same bytes gets "
                   "200 again; different bytes under a stored id get 409.",
    .section = "8",
    .state_dir = "/var/lib/logferry/receiver",
    .config = &lf_receiver_config_table,
    .commands = lf_receiver_commands,
    .preflight = receiver_preflight,
    .start = receiver_start,
    .stop = receiver_stop,
};

int main(int argc, char **argv)
{
    receiver.n_commands = lf_receiver_n_commands;
    return lf_service_main(&receiver, argc, argv);
}
