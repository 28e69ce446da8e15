/* Queue routes for parsers on other hosts (scope worker; redrive: admin), on the asynchronous
 * lf_queue API: every answer is sent from the operation's callback, after its commit.
 *   POST /v1/queues/{q}/receive  {"max":N,"wait_s":S,"visibility_s":V}
 *   POST /v1/queues/{q}/ack      {"receipts":[...]}
 *   POST /v1/queues/{q}/extend   {"receipt":R,"visibility_s":V}
 *   POST /v1/queues/{q}/nack     {"receipt":R,"delay_s":D}
 *   GET  /v1/queues/{q}          statistics
 *   POST /v1/queues/{q}/redrive  {"max":N} (optional body; 0 or absent = all)
 * With backend = jetstream, statistics and redrive come from JetStream (lf_jsqueue.h, blocking, so
 * on the libuv pool) in the same JSON; receive, ack, extend and nack answer 409, since parsers on
 * that backend pull from JetStream themselves. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_json.h"
#include "lf_log.h"
#include "receiver.h"

#define QUEUE_BODY_MAX (256 * 1024)
#define RECEIVE_WAIT_MAX_S 20
#define RECEIVE_DEFAULT_MAX 10
#define VISIBILITY_DEFAULT_S 30

typedef struct qop {
    lf_receiver *r;
    lf_http_request *req;
    union {
        lf_queue_receive_req recv;
        lf_queue_ack_req ack;
        lf_queue_op_req op;
    } u;
    const char **receipts;
    size_t n_receipts;
    json_t *doc;
} qop;

static void qop_free(qop *o)
{
    json_decref(o->doc);
    lf_free(o->receipts);
    lf_free(o);
}

static void respond_json(lf_http_request *req, int status, json_t *v)
{
    lf_buf b = LF_BUF_INIT(64u << 20);
    if (!v || lf_json_dump(v, &b) != 0)
        lf_http_respond_error(req, 500, "internal", "cannot build the answer", NULL);
    else
        lf_http_respond(req, status, "application/json", b.data, b.len, NULL);
    json_decref(v);
    lf_buf_free(&b);
}

static void respond_queue_error(lf_receiver *r, lf_http_request *req, int rc)
{
    if (rc == -EINVAL || rc == LF_ELIMIT)
        lf_http_respond_error(req, 400, "bad_request", lf_strerror(rc), NULL);
    else if (rc == -ENOENT)
        lf_http_respond_error(req, 404, "receipt_not_found", "the receipt is stale or unknown", NULL);
    else {
        int st = lf_receiver_storage_status(rc);
        lf_receiver_respond_error(r, req, st, st == 507 ? "storage_full" : "queue_unavailable", lf_strerror(rc));
    }
}

/* Authorises, checks the queue name and parses the JSON body (an empty body is {}). NULL when it
 * has answered. */
static qop *begin(lf_http_request *req, const char *scope)
{
    lf_receiver *r = req->route_data;
    if (lf_tokens_authorize(&r->tokens, req, scope) != 0)
        return NULL;
    if (!lf_queue_name_valid(req->params[0])) {
        lf_http_respond_error(req, 400, "bad_queue", "queue names are 1-120 characters of [A-Za-z0-9._-]", NULL);
        return NULL;
    }
    if (!r->queue && !r->jsq) {
        lf_receiver_respond_error(r, req, 503, "queue_unavailable", "the queue is closed");
        return NULL;
    }
    qop *o = lf_calloc(1, sizeof *o);
    if (!o) {
        lf_receiver_respond_error(r, req, 503, "no_memory", "out of memory");
        return NULL;
    }
    o->r = r;
    o->req = req;
    char stackbuf[4096];
    const char *text = req->body.data;
    lf_buf fbuf = LF_BUF_INIT(QUEUE_BODY_MAX);
    if (req->body.fd >= 0) { /* only when body_memory_max is set below the route's limit */
        char *tmp = stackbuf;
        ssize_t n;
        off_t off = 0;
        while ((n = pread(req->body.fd, tmp, sizeof stackbuf, off)) > 0 && lf_buf_append(&fbuf, tmp, (size_t)n) == 0)
            off += n;
        text = fbuf.data;
    }
    if (req->body.len == 0) {
        o->doc = json_object();
    } else {
        lf_buf err = LF_BUF_INIT(256);
        if (lf_json_parse(text ? text : "", (size_t)req->body.len, QUEUE_BODY_MAX, &o->doc, &err) != 0 ||
            !json_is_object(o->doc)) {
            char msg[300];
            snprintf(msg, sizeof msg, "the body must be a JSON object%s%s", err.len ? ": " : "", lf_buf_cstr(&err));
            lf_buf_free(&err);
            lf_buf_free(&fbuf);
            qop_free(o);
            lf_http_respond_error(req, 400, "bad_request", msg, NULL);
            return NULL;
        }
        lf_buf_free(&err);
    }
    lf_buf_free(&fbuf);
    return o;
}

/* receive, ack, extend, nack: only the embedded queue hands out messages here. Frees o. */
static bool refused_on_jetstream(qop *o)
{
    if (!o->r->jsq)
        return false;
    lf_http_respond_error(o->req, 409, "wrong_backend",
                          "this receiver's queue is on JetStream ([queue] backend = jetstream): parsers take "
                          "sessions from JetStream directly",
                          NULL);
    qop_free(o);
    return true;
}

static bool get_u64(qop *o, const char *key, uint64_t def, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = def;
    if (lf_json_opt_uint(o->doc, key, &v) != 0 || v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s must be an integer from %" PRIu64 " to %" PRIu64, key, lo, hi);
        lf_http_respond_error(o->req, 400, "bad_request", msg, NULL);
        qop_free(o);
        return false;
    }
    *out = v;
    return true;
}

static const char *get_receipt(qop *o)
{
    const char *s = NULL;
    if (lf_json_get_string(o->doc, "receipt", &s) != 0 || !s[0] || strlen(s) >= LF_QUEUE_RECEIPT_MAX) {
        lf_http_respond_error(o->req, 400, "bad_request", "receipt must be a receipt string", NULL);
        qop_free(o);
        return NULL;
    }
    return s;
}

/* The statistics as GET /v1/queues/{q} answers them, for either backend. */
static json_t *stats_json(const char *queue, const lf_queue_statistics *s)
{
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "queue",
                          queue, "exists", s->exists, "depth", (json_int_t)s->depth, "in_flight",
                          (json_int_t)s->in_flight, "delayed", (json_int_t)s->delayed, "oldest_age_ms",
                          (json_int_t)s->oldest_age_ms, "dlq_depth", (json_int_t)s->dlq_depth, "dlq_purged",
                          (json_int_t)s->dlq_purged, "totals", "sent", (json_int_t)s->sent, "received",
                          (json_int_t)s->received, "acked", (json_int_t)s->acked, "nacked", (json_int_t)s->nacked,
                          "dead_lettered", (json_int_t)s->dead_lettered, "redriven", (json_int_t)s->redriven,
                          "expired_redeliveries", (json_int_t)s->expired_redeliveries);
}

/* ---- receive ---- */

static void on_received(lf_queue_receive_req *rr, int status)
{
    qop *o = rr->data;
    if (status != 0) {
        respond_queue_error(o->r, o->req, status);
        qop_free(o);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < rr->count; i++) {
        const lf_queue_msg *m = &rr->msgs[i];
        json_t *jm = json_pack("{s:I, s:s, s:I, s:I, s:I}", "id", (json_int_t)m->id, "receipt", m->receipt,
                               "receive_count", (json_int_t)m->receive_count, "sent_ms", (json_int_t)m->sent_ms,
                               "visible_at_ms", (json_int_t)m->visible_at_ms);
        json_t *b = json_stringn(m->body, m->len);
        if (!b) { /* not UTF-8: base64 */
            size_t need = lf_crypto_b64_encoded_size(m->len, LF_B64_STANDARD);
            char *enc = lf_malloc(need);
            if (enc && lf_crypto_b64_encode(enc, need, m->body, m->len, LF_B64_STANDARD) == 0 && jm)
                json_object_set_new(jm, "body_b64", json_string(enc));
            lf_free(enc);
        } else if (jm) {
            json_object_set_new(jm, "body", b);
            b = NULL;
        }
        json_decref(b);
        if (!jm || json_array_append_new(arr, jm) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    respond_json(o->req, 200, arr ? json_pack("{s:o}", "messages", arr) : NULL);
    qop_free(o);
}

static void handle_receive(lf_http_request *req)
{
    qop *o = begin(req, "worker");
    uint64_t max, wait_s, vis;
    if (!o || refused_on_jetstream(o) || !get_u64(o, "max", RECEIVE_DEFAULT_MAX, 1, LF_QUEUE_RECEIVE_MAX, &max) ||
        !get_u64(o, "wait_s", 0, 0, RECEIVE_WAIT_MAX_S, &wait_s) ||
        !get_u64(o, "visibility_s", VISIBILITY_DEFAULT_S, 1, LF_QUEUE_VISIBILITY_MAX / 1000, &vis))
        return;
    o->u.recv.data = o;
    int rc = lf_queue_receive(o->r->queue, &o->u.recv, req->params[0], (uint32_t)max, vis * 1000, wait_s * 1000,
                              on_received);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

/* ---- ack ---- */

static void on_acked(lf_queue_ack_req *ar, int status)
{
    qop *o = ar->data;
    if (status != 0) {
        respond_queue_error(o->r, o->req, status);
        qop_free(o);
        return;
    }
    json_t *res = json_array();
    for (size_t i = 0; res && i < ar->count; i++)
        json_array_append_new(res, json_string(ar->results[i] == 0 ? "acked" : "stale"));
    respond_json(o->req, 200, res ? json_pack("{s:I, s:o}", "acked", (json_int_t)ar->acked, "results", res) : NULL);
    qop_free(o);
}

static void handle_ack(lf_http_request *req)
{
    qop *o = begin(req, "worker");
    if (!o || refused_on_jetstream(o))
        return;
    json_t *arr = NULL;
    size_t n = 0;
    if (lf_json_get_array(o->doc, "receipts", &arr) != 0 || (n = json_array_size(arr)) == 0 || n > LF_QUEUE_ACK_MAX) {
        lf_http_respond_error(req, 400, "bad_request", "receipts must be an array of 1 to 1000 receipts", NULL);
        qop_free(o);
        return;
    }
    o->receipts = lf_calloc(n, sizeof *o->receipts);
    if (!o->receipts) {
        lf_receiver_respond_error(o->r, req, 503, "no_memory", "out of memory");
        qop_free(o);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s || !s[0] || strlen(s) >= LF_QUEUE_RECEIPT_MAX) {
            lf_http_respond_error(req, 400, "bad_request", "receipts must be strings", NULL);
            qop_free(o);
            return;
        }
        o->receipts[i] = s;
    }
    o->u.ack.data = o;
    int rc = lf_queue_ack(o->r->queue, &o->u.ack, req->params[0], o->receipts, n, on_acked);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

/* ---- extend, nack, redrive, stats ---- */

static void on_simple(lf_queue_op_req *op, int status)
{
    qop *o = op->data;
    if (status != 0)
        respond_queue_error(o->r, o->req, status);
    else
        respond_json(o->req, 200, json_pack("{s:b}", "ok", 1));
    qop_free(o);
}

static void handle_extend(lf_http_request *req)
{
    qop *o = begin(req, "worker");
    const char *rc_s;
    uint64_t vis;
    if (!o || refused_on_jetstream(o) || !(rc_s = get_receipt(o)) ||
        !get_u64(o, "visibility_s", VISIBILITY_DEFAULT_S, 0, LF_QUEUE_VISIBILITY_MAX / 1000, &vis))
        return;
    o->u.op.data = o;
    int rc = lf_queue_extend(o->r->queue, &o->u.op, req->params[0], rc_s, vis * 1000, on_simple);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

static void handle_nack(lf_http_request *req)
{
    qop *o = begin(req, "worker");
    const char *rc_s;
    uint64_t delay;
    if (!o || refused_on_jetstream(o) || !(rc_s = get_receipt(o)) || !get_u64(o, "delay_s", 0, 0, LF_QUEUE_DELAY_MAX / 1000, &delay))
        return;
    o->u.op.data = o;
    int rc = lf_queue_nack(o->r->queue, &o->u.op, req->params[0], rc_s, delay * 1000, on_simple);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

static void on_redriven(lf_queue_op_req *op, int status)
{
    qop *o = op->data;
    if (status != 0)
        respond_queue_error(o->r, o->req, status);
    else
        respond_json(o->req, 200, json_pack("{s:I}", "moved", (json_int_t)op->count));
    qop_free(o);
}

/* ---- jetstream: stats and redrive on the pool ---- */

typedef struct js_op {
    uv_work_t work;
    qop *o;
    bool redrive;
    uint64_t max, moved;
    lf_queue_statistics stats;
    int rc;
    char err[256];
} js_op;

static void work_js(uv_work_t *w)
{
    js_op *j = w->data;
    lf_buf err = LF_BUF_INIT(sizeof j->err);
    j->rc = j->redrive ? lf_jsqueue_redrive(j->o->r->jsq, j->max, &j->moved, &err)
                       : lf_jsqueue_stats(j->o->r->jsq, &j->stats, &err);
    snprintf(j->err, sizeof j->err, "%s", lf_buf_cstr(&err));
    lf_buf_free(&err);
}

static void after_js(uv_work_t *w, int status)
{
    js_op *j = w->data;
    qop *o = j->o;
    if (status != 0 && j->rc == 0)
        j->rc = -ECANCELED;
    if (j->rc != 0) {
        LF_WARN("queue", "%s on JetStream: %s", j->redrive ? "redrive" : "statistics", j->err);
        lf_receiver_respond_error(o->r, o->req, 503, "queue_unavailable", j->err[0] ? j->err : lf_strerror(j->rc));
    } else if (j->redrive) {
        respond_json(o->req, 200, json_pack("{s:I}", "moved", (json_int_t)j->moved));
    } else {
        respond_json(o->req, 200, stats_json(o->req->params[0], &j->stats));
    }
    qop_free(o);
    lf_free(j);
}

/* Runs the JetStream call for o; the queue is the configured one, any other does not exist there. */
static void start_js(qop *o, bool redrive, uint64_t max)
{
    if (strcmp(o->req->params[0], o->r->cfg->queue_name) != 0) {
        lf_queue_statistics none;
        memset(&none, 0, sizeof none);
        respond_json(o->req, 200, redrive ? json_pack("{s:I}", "moved", (json_int_t)0)
                                          : stats_json(o->req->params[0], &none));
        qop_free(o);
        return;
    }
    js_op *j = lf_calloc(1, sizeof *j);
    if (!j) {
        lf_receiver_respond_error(o->r, o->req, 503, "no_memory", "out of memory");
        qop_free(o);
        return;
    }
    j->o = o;
    j->redrive = redrive;
    j->max = max;
    j->work.data = j;
    if (uv_queue_work(o->r->loop, &j->work, work_js, after_js) != 0) {
        lf_receiver_respond_error(o->r, o->req, 503, "busy", "cannot schedule the request");
        qop_free(o);
        lf_free(j);
    }
}

static void handle_redrive(lf_http_request *req)
{
    qop *o = begin(req, "admin");
    uint64_t max;
    if (!o || !get_u64(o, "max", 0, 0, UINT32_MAX, &max))
        return;
    if (o->r->jsq) {
        start_js(o, true, max);
        return;
    }
    o->u.op.data = o;
    int rc = lf_queue_redrive(o->r->queue, &o->u.op, req->params[0], max, on_redriven);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

static void on_stats(lf_queue_op_req *op, int status)
{
    qop *o = op->data;
    if (status != 0) {
        respond_queue_error(o->r, o->req, status);
        qop_free(o);
        return;
    }
    respond_json(o->req, 200, stats_json(o->req->params[0], &op->stats));
    qop_free(o);
}

static void handle_stats(lf_http_request *req)
{
    qop *o = begin(req, "worker,read"); /* monitoring needs no power over the messages */
    if (!o)
        return;
    if (o->r->jsq) {
        start_js(o, false, 0);
        return;
    }
    o->u.op.data = o;
    int rc = lf_queue_stats(o->r->queue, &o->u.op, req->params[0], on_stats);
    if (rc != 0) {
        respond_queue_error(o->r, req, rc);
        qop_free(o);
    }
}

int lf_receiver_queue_routes(lf_receiver *r)
{
    lf_http_server *srv = lf_service_http(r->svc);
    struct {
        unsigned m;
        const char *p;
        lf_http_handler h;
    } routes[] = {
        {LF_HTTP_POST, "/v1/queues/{q}/receive", handle_receive},
        {LF_HTTP_POST, "/v1/queues/{q}/ack", handle_ack},
        {LF_HTTP_POST, "/v1/queues/{q}/extend", handle_extend},
        {LF_HTTP_POST, "/v1/queues/{q}/nack", handle_nack},
        {LF_HTTP_POST, "/v1/queues/{q}/redrive", handle_redrive},
        {LF_HTTP_GET | LF_HTTP_HEAD, "/v1/queues/{q}", handle_stats},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = lf_http_server_route(srv, routes[i].m, routes[i].p, QUEUE_BODY_MAX, routes[i].h, NULL, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}
