/* backend = jetstream: session ids go to the JetStream queue (lf_jsqueue.h) instead of the embedded
 * one. libnats blocks, so every publish runs on the libuv pool (uv_queue_work), at most
 * queue.max_publishes at once so that a slow JetStream holds only that many pool threads; the
 * publishes past it wait their turn in a FIFO on the loop (holding no thread: their number is
 * bounded by limits.max_concurrent_uploads, since each belongs to an upload not yet answered). While
 * the connection is away, uploads are refused with 503 (lf_receiver_js_busy) and a waiting publish
 * fails at once rather than waiting out a publish timeout.
 *
 * A session counts as queued ("queued" in the index) only after JetStream's PubAck. Rows left
 * "stored" (a failed publish answered 503, a crash between store and PubAck) are published again
 * by start-up recovery and by a sweep every queue.republish_interval, with the session id as
 * Nats-Msg-Id: a copy that did get through is dropped by the stream's dedup window, one past it by
 * the parser's idempotent load. With [queue] advertise_url set, every message carries it as header
 * Lf-Receiver (lf_jsqueue_options.origin), so parsers fetch the blob from this receiver. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_jsconfig.h"
#include "lf_log.h"
#include "receiver.h"

#define SWEEP_BATCH 1000

int lf_receiver_js_open(lf_receiver *r)
{
    const struct lf_receiver_config *cfg = r->cfg;
    lf_jetstream_options o;
    lf_jsconfig_connection(&cfg->js, "logferry-receiver", &o);
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_jetstream_connect(&o, &r->js, &err);
    if (rc == 0) {
        lf_jsqueue_options qo;
        lf_jsconfig_queue(&cfg->js, cfg->queue_name, &qo);
        qo.visibility_ms = cfg->js_visibility_ms;
        qo.max_receives = (uint32_t)cfg->max_receives;
        /* every publish names this receiver, the holder of the blob, for the parsers to fetch it from */
        qo.origin = cfg->advertise_url;
        int64_t deadline = lf_receiver_start_deadline();
        while ((rc = lf_jsqueue_open(r->js, &qo, &r->jsq, &err)) != 0 &&
               lf_receiver_retry_start(rc, deadline, "JetStream queue", &err))
            ;
    }
    if (rc != 0)
        LF_ERROR("receiver", "JetStream queue %s at %s: %s", cfg->queue_name, o.nservers ? o.servers[0] : "?",
                 lf_buf_cstr(&err));
    lf_buf_free(&err);
    return rc;
}

void lf_receiver_js_close(lf_receiver *r)
{
    if (!r->js)
        return;
    lf_jsqueue_close(r->jsq);
    lf_jetstream_close(r->js);
    r->jsq = NULL;
    r->js = NULL;
    /* the receiver's only NATS connection */
    lf_jetstream_shutdown();
}

const char *lf_receiver_js_busy(lf_receiver *r)
{
    if (!r->jsq || !lf_jetstream_connected(r->js))
        return "queue_unavailable";
    return NULL;
}

int lf_receiver_js_publish_id(lf_jsqueue *q, const char *id, lf_buf *err)
{
    if (lf_fail_hit(LF_FAIL_PUBLISH)) {
        lf_buf_msgf(err, "publish failure injected (LF_FAIL_PUBLISH)");
        return -EIO;
    }
    bool dup = false;
    return lf_jsqueue_publish(q, id, strlen(id), id, &dup, NULL, err);
}

static void work_publish(uv_work_t *w)
{
    lf_publish_req *p = w->data;
    lf_buf err = LF_BUF_INIT(sizeof p->err);
    p->status = lf_receiver_js_publish_id(p->r->jsq, p->id, &err);
    if (p->status != 0)
        snprintf(p->err, sizeof p->err, "%s", lf_buf_cstr(&err));
    lf_buf_free(&err);
}

static void after_publish(uv_work_t *w, int status);

static int start_publish(lf_receiver *r, lf_publish_req *p)
{
    p->work.data = p;
    int rc = uv_queue_work(r->loop, &p->work, work_publish, after_publish);
    if (rc == 0)
        r->js_publishing++;
    return rc;
}

/* Starts waiting publishes while there is room; one that cannot start now (the connection away, the
 * pool refusing) fails through its callback, since its call had succeeded. */
static void start_waiting(lf_receiver *r)
{
    while (r->publish_wait_head && r->js_publishing < r->cfg->max_publishes) {
        lf_publish_req *p = r->publish_wait_head;
        r->publish_wait_head = p->next;
        if (!r->publish_wait_head)
            r->publish_wait_tail = NULL;
        p->next = NULL;
        int rc = lf_receiver_js_busy(r) ? -ENOTCONN : start_publish(r, p);
        if (rc != 0) {
            p->status = rc;
            snprintf(p->err, sizeof p->err, "%s", rc == -ENOTCONN ? "JetStream is unreachable" : lf_strerror(rc));
            p->cb(p, rc);
        }
    }
}

static void after_publish(uv_work_t *w, int status)
{
    lf_publish_req *p = w->data;
    lf_receiver *r = p->r;
    r->js_publishing--;
    if (status != 0 && p->status == 0) {
        p->status = -ECANCELED;
        snprintf(p->err, sizeof p->err, "cancelled");
    }
    p->cb(p, p->status);
    start_waiting(r);
}

int lf_receiver_js_publish(lf_receiver *r, lf_publish_req *p, const char *id, void (*cb)(lf_publish_req *, int))
{
    if (lf_receiver_js_busy(r))
        return -ENOTCONN;
    memset(&p->work, 0, sizeof p->work);
    p->r = r;
    p->cb = cb;
    p->next = NULL;
    p->status = 0;
    p->err[0] = '\0';
    snprintf(p->id, sizeof p->id, "%s", id);
    if (r->js_publishing < r->cfg->max_publishes && !r->publish_wait_head)
        return start_publish(r, p);
    if (r->publish_wait_tail)
        r->publish_wait_tail->next = p;
    else
        r->publish_wait_head = p;
    r->publish_wait_tail = p;
    return 0;
}

/* ---- the queue's depth, for backpressure (limits.max_queue_depth), the gauge and /healthz ---- */

typedef struct depth_job {
    uv_work_t work;
    lf_receiver *r;
    lf_queue_statistics stats;
    int rc;
} depth_job;

static void work_depth(uv_work_t *w)
{
    depth_job *j = w->data;
    lf_buf err = LF_BUF_INIT(256);
    j->rc = lf_jsqueue_stats(j->r->jsq, &j->stats, &err);
    lf_buf_free(&err);
}

static void after_depth(uv_work_t *w, int status)
{
    depth_job *j = w->data;
    lf_receiver *r = j->r;
    r->stats_in_flight = false;
    if (status == 0 && j->rc == 0)
        r->queue_depth = j->stats.depth;
    lf_free(j);
    lf_receiver_job_done(r);
}

void lf_receiver_js_refresh_depth(lf_receiver *r)
{
    if (r->stats_in_flight || r->stopping || !lf_jetstream_connected(r->js))
        return;
    depth_job *j = lf_calloc(1, sizeof *j);
    if (!j)
        return;
    j->r = r;
    j->work.data = j;
    if (uv_queue_work(r->loop, &j->work, work_depth, after_depth) == 0)
        r->stats_in_flight = true;
    else
        lf_free(j);
}

/* ---- the sweep ---- */

typedef struct sweep_ctx {
    lf_receiver *r;
    unsigned published;
    int error;
} sweep_ctx;

static int sweep_one(void *arg, const lf_index_row *row)
{
    sweep_ctx *c = arg;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_receiver_js_publish_id(c->r->jsq, row->id, &err);
    if (rc == 0)
        rc = lf_index_set_status(c->r->index, row->id, "queued");
    if (rc != 0) {
        /* the connection is away or the index failed: the next sweep tries again */
        LF_WARN("republish", "%s: %s%s%s", row->id, lf_strerror(rc), err.len ? ": " : "", lf_buf_cstr(&err));
        c->error = rc;
    } else {
        c->published++;
    }
    lf_buf_free(&err);
    return rc != 0;
}

static void work_sweep(uv_work_t *w)
{
    sweep_ctx *c = w->data;
    /* rows left "claiming" become "stored" (or "foreign") first, so this sweep publishes them */
    lf_receiver_settle_claims(c->r);
    lf_receiver_backfill_claims(c->r, 20000);
    int rc = lf_index_each_status(c->r->index, "stored", SWEEP_BATCH, sweep_one, c);
    if (rc != 0)
        LF_WARN("republish", "reading the index: %s", lf_strerror(rc));
    if (c->published)
        LF_INFO("republish", "%u stored sessions published to JetStream again (never acknowledged before)",
                c->published);
}

static void after_sweep(uv_work_t *w, int status)
{
    (void)status;
    sweep_ctx *c = w->data;
    lf_receiver *r = c->r;
    r->sweep_running = false;
    lf_free(c);
    lf_receiver_job_done(r);
}

static void on_sweep_timer(uv_timer_t *t)
{
    lf_receiver *r = t->data;
    if (r->sweep_running || r->stopping || !lf_jetstream_connected(r->js))
        return;
    sweep_ctx *c = lf_calloc(1, sizeof *c);
    if (!c)
        return;
    c->r = r;
    r->sweep_work.data = c;
    if (uv_queue_work(r->loop, &r->sweep_work, work_sweep, after_sweep) == 0)
        r->sweep_running = true;
    else
        lf_free(c);
}

void lf_receiver_js_start_sweep(lf_receiver *r)
{
    uv_timer_init(r->loop, &r->sweep_timer);
    r->sweep_timer.data = r;
    uint64_t every = r->cfg->republish_interval_ms;
    uv_timer_start(&r->sweep_timer, on_sweep_timer, every, every);
    r->sweep_timer_on = true;
}

void lf_receiver_js_stop_sweep(lf_receiver *r)
{
    if (!r->sweep_timer_on)
        return;
    uv_timer_stop(&r->sweep_timer);
    lf_receiver_close_handle(r, (uv_handle_t *)&r->sweep_timer);
    r->sweep_timer_on = false;
}
