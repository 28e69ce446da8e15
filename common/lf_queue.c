/* The queue's asynchronous API: operations from the loop go to one writer thread, which runs every
 * operation pending at that moment in one transaction (group commit: one fsync for the batch) and
 * hands the batch back to the loop through a uv_async, where the callbacks run. Long polls that
 * found nothing wait on the loop and are resubmitted when a send or redrive to their queue commits,
 * when the next message becomes visible by time, at least once a second (another process may have
 * sent), and when their wait ends. */
#include <errno.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue_store.h"

#define COMP "queue"
#define IDLE_MAINTENANCE_NS (10ull * 1000 * 1000 * 1000)
#define REPOLL_MS 1000

enum op_type { OP_SEND, OP_RECEIVE, OP_ACK, OP_EXTEND, OP_NACK, OP_REDRIVE, OP_STATS, OP_PEEK,
               OP_CHECK };

struct lf_queue_op {
    lf_queue_op *next;
    lf_queue *q;
    enum op_type type;
    int status;
    void *req;
    union {
        lf_queue_send_cb send;
        lf_queue_receive_cb receive;
        lf_queue_ack_cb ack;
        lf_queue_op_cb op;
    } cb;
    char queue[LF_QUEUE_NAME_MAX + 8];
    /* inputs (body, dedup id and receipts live in the same allocation as the op) */
    const void *body;
    size_t len;
    const char *dedup;
    const char **receipts;
    size_t nreceipts;
    uint64_t ms;        /* delay, visibility */
    uint64_t max;
    uint64_t deadline;  /* receive: loop time when the long poll ends */
    uint64_t wake_at;   /* receive: loop time of the next attempt while waiting */
    uint64_t wake_in;   /* receive: ms until the next message becomes visible (0 unknown) */
    /* outputs */
    uint64_t id;
    bool duplicate;
    lf_queue_msg *msgs;
    size_t nmsgs;
    int *results;
    size_t acked;
    uint64_t count;
    lf_queue_statistics stats;
    char *report;
};

struct lf_queue {
    uv_loop_t *loop;
    lf_queue_db *db;          /* used by the writer thread only while it runs */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    /* guarded by mu */
    lf_queue_op *pend_head, *pend_tail;
    size_t npend;
    lf_queue_op *done_head, *done_tail;
    bool stop;
    lf_queue_engine_stats engine;
    /* loop thread only */
    uv_async_t async;
    uv_timer_t timer;
    uv_prepare_t prepare;     /* hands the operations of one loop iteration over at once */
    lf_queue_op *sub_head, *sub_tail;
    size_t nsub;
    size_t outstanding;       /* operations whose callback has not run yet */
    lf_queue_op *waiters;     /* long polls waiting, oldest first */
    size_t nwaiters;
    bool closing, finished;
    int handles_open;
    lf_queue_close_cb close_cb;
    uint32_t max_pending;
    void *data; /* the caller's */
};

/* ---- writer thread --------------------------------------------------------------------------- */

static bool is_write(enum op_type t)
{
    return t != OP_STATS && t != OP_PEEK && t != OP_CHECK;
}

static void free_outputs(lf_queue_op *op)
{
    lf_queue_msgs_free(op->msgs, op->nmsgs);
    op->msgs = NULL;
    op->nmsgs = 0;
    lf_free(op->report);
    op->report = NULL;
}

/* Runs one operation; its status is a logical result or a storage error (db->fatal set). */
static int exec_op(lf_queue_db *db, lf_queue_op *op)
{
    switch (op->type) {
    case OP_SEND:
        return lf_queue_store_send(db, op->queue, op->body, op->len, op->dedup, op->ms, &op->id,
                                   &op->duplicate);
    case OP_RECEIVE: {
        uint64_t next = 0;
        int rc = lf_queue_store_receive(db, op->queue, (uint32_t)op->max, op->ms, &op->msgs,
                                        &op->nmsgs, &next);
        uint64_t now = lf_queue_store_now(db);
        op->wake_in = next > now ? next - now : 0;
        return rc;
    }
    case OP_ACK:
        op->acked = 0;
        for (size_t i = 0; i < op->nreceipts && !db->fatal; i++) {
            op->results[i] = lf_queue_store_ack(db, op->queue, op->receipts[i]);
            if (op->results[i] == 0)
                op->acked++;
        }
        return db->fatal;
    case OP_EXTEND:
        return lf_queue_store_extend(db, op->queue, op->receipts[0], op->ms);
    case OP_NACK:
        return lf_queue_store_nack(db, op->queue, op->receipts[0], op->ms);
    case OP_REDRIVE:
        return lf_queue_store_redrive(db, op->queue, op->max, &op->count);
    case OP_STATS:
        return lf_queue_store_stats(db, op->queue, &op->stats);
    case OP_PEEK:
        return lf_queue_store_peek(db, op->queue, (uint32_t)op->max, &op->msgs, &op->nmsgs);
    case OP_CHECK:
        return lf_queue_store_check(db, &op->report);
    }
    return -EINVAL;
}

/* 0 committed, or the code every write operation of the batch got. */
static int run_writes(lf_queue_db *db, lf_queue_op *batch, size_t nwrites)
{
    int rc = lf_queue_store_begin(db);
    if (rc == 0) {
        for (lf_queue_op *op = batch; op && !db->fatal; op = op->next) {
            if (!is_write(op->type))
                continue;
            /* Only a receive can fail logically (out of memory) after it changed rows; the other
             * operations fail before writing or write nothing, and need no savepoint. */
            bool savepoint = op->type == OP_RECEIVE;
            if (savepoint && lf_queue_store_op_begin(db) < 0)
                break;
            op->status = exec_op(db, op);
            if (savepoint && !db->fatal)
                lf_queue_store_op_end(db, op->status < 0);
        }
        if (!db->fatal) {
            int mrc = lf_queue_store_maintain(db, false);
            (void)mrc; /* its failures are storage errors, in db->fatal */
        }
        if (db->fatal) {
            rc = db->fatal;
            lf_queue_store_rollback(db);
        } else {
            rc = lf_queue_store_commit(db);
        }
    }
    if (rc == 0)
        return 0;
    /* The transaction did not commit: nothing of it happened, for any operation in it. */
    LF_WARN(COMP, "%s: commit of %zu operations failed: %s", db->path, nwrites, lf_strerror(rc));
    for (lf_queue_op *op = batch; op; op = op->next) {
        if (!is_write(op->type))
            continue;
        free_outputs(op);
        op->status = rc;
    }
    return rc;
}

static void run_batch(lf_queue *q, lf_queue_op *batch)
{
    lf_queue_db *db = q->db;
    size_t nwrites = 0;
    for (lf_queue_op *op = batch; op; op = op->next)
        nwrites += is_write(op->type);
    if (nwrites) {
        int rc = run_writes(db, batch, nwrites);
        uv_mutex_lock(&q->mu);
        if (rc == 0) {
            q->engine.commits++;
            q->engine.committed_ops += nwrites;
        } else {
            q->engine.failed_commits++;
        }
        uv_mutex_unlock(&q->mu);
    }
    /* Reads run after the commit so they see its effects and never see a rolled-back batch. */
    for (lf_queue_op *op = batch; op; op = op->next) {
        if (is_write(op->type))
            continue;
        if (db->broken || !db->db) {
            int rc = lf_queue_store_reopen(db);
            if (rc) {
                op->status = rc;
                continue;
            }
        }
        db->fatal = 0;
        op->status = exec_op(db, op);
        db->fatal = 0;
    }
}

static void idle_maintenance(lf_queue_db *db)
{
    if (lf_queue_store_begin(db) != 0)
        return;
    if (lf_queue_store_maintain(db, false) < 0 || db->fatal)
        lf_queue_store_rollback(db);
    else if (lf_queue_store_commit(db) != 0)
        LF_WARN(COMP, "%s: idle maintenance did not commit; next time", db->path);
}

static void writer_main(void *arg)
{
    lf_queue *q = arg;
    uint32_t max_batch = q->db->opt.max_batch;
    uv_mutex_lock(&q->mu);
    for (;;) {
        if (!q->pend_head && !q->stop) {
            if (uv_cond_timedwait(&q->cv, &q->mu, IDLE_MAINTENANCE_NS) == UV_ETIMEDOUT &&
                !q->pend_head && !q->stop) {
                uv_mutex_unlock(&q->mu);
                idle_maintenance(q->db);
                uv_mutex_lock(&q->mu);
            }
            continue;
        }
        if (!q->pend_head)
            break; /* stop requested and nothing left */
        lf_queue_op *batch = q->pend_head, *last = batch;
        size_t n = 1;
        while (last->next && n < max_batch) {
            last = last->next;
            n++;
        }
        q->pend_head = last->next;
        if (!q->pend_head)
            q->pend_tail = NULL;
        q->npend -= n;
        last->next = NULL;
        uv_mutex_unlock(&q->mu);

        run_batch(q, batch);

        uv_mutex_lock(&q->mu);
        if (q->done_tail)
            q->done_tail->next = batch;
        else
            q->done_head = batch;
        q->done_tail = last;
        uv_async_send(&q->async);
    }
    uv_mutex_unlock(&q->mu);
}

/* ---- loop thread ----------------------------------------------------------------------------- */

/* Fresh monotonic ms: the loop's cached time may be stale when a call comes in. */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Operations submitted during one loop iteration are handed to the writer together just before
 * the loop polls again (uv_prepare), so the writer sees them as one batch instead of waking up for
 * the first and committing it alone. */
static void prepare_cb(uv_prepare_t *p)
{
    lf_queue *q = p->data;
    uv_prepare_stop(p);
    if (!q->sub_head)
        return;
    uv_mutex_lock(&q->mu);
    if (q->pend_tail)
        q->pend_tail->next = q->sub_head;
    else
        q->pend_head = q->sub_head;
    q->pend_tail = q->sub_tail;
    q->npend += q->nsub;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
    q->sub_head = q->sub_tail = NULL;
    q->nsub = 0;
}

static void submit(lf_queue *q, lf_queue_op *op)
{
    op->next = NULL;
    if (q->sub_tail)
        q->sub_tail->next = op;
    else
        q->sub_head = op;
    q->sub_tail = op;
    if (q->nsub++ == 0)
        uv_prepare_start(&q->prepare, prepare_cb);
}

static int admit(lf_queue *q)
{
    if (!q)
        return -EINVAL;
    if (q->closing)
        return LF_ECLOSED;
    uv_mutex_lock(&q->mu);
    size_t n = q->npend + q->nsub + q->nwaiters;
    uv_mutex_unlock(&q->mu);
    return n >= q->max_pending ? -EAGAIN : 0;
}

static lf_queue_op *new_op(lf_queue *q, enum op_type type, void *req, const char *queue,
                           size_t extra)
{
    if (queue && !lf_queue_name_valid(queue))
        return NULL;
    lf_queue_op *op = lf_calloc(1, sizeof *op + extra);
    if (!op)
        return NULL;
    op->q = q;
    op->type = type;
    op->req = req;
    if (queue)
        strcpy(op->queue, queue); /* length checked by lf_queue_name_valid */
    return op;
}

static void start(lf_queue *q, lf_queue_op *op)
{
    q->outstanding++;
    submit(q, op);
}

static void finish_close(lf_queue *q);
static void timer_cb(uv_timer_t *t);

static void complete(lf_queue *q, lf_queue_op *op)
{
    int st = op->status;
    switch (op->type) {
    case OP_SEND: {
        lf_queue_send_req *r = op->req;
        r->id = st == 0 ? op->id : 0;
        r->duplicate = st == 0 && op->duplicate;
        op->cb.send(r, st);
        break;
    }
    case OP_RECEIVE: {
        lf_queue_receive_req *r = op->req;
        r->msgs = op->msgs;
        r->count = op->nmsgs;
        op->cb.receive(r, st);
        break;
    }
    case OP_ACK: {
        lf_queue_ack_req *r = op->req;
        r->results = op->results;
        r->count = op->nreceipts;
        r->acked = st == 0 ? op->acked : 0;
        op->cb.ack(r, st);
        break;
    }
    default: {
        lf_queue_op_req *r = op->req;
        r->count = op->count;
        r->stats = op->stats;
        r->msgs = op->msgs;
        r->nmsgs = op->nmsgs;
        r->report = op->report;
        op->cb.op(r, st);
        break;
    }
    }
    free_outputs(op);
    lf_free(op);
    q->outstanding--;
}

static void rearm_timer(lf_queue *q)
{
    if (!q->waiters) {
        uv_timer_stop(&q->timer);
        return;
    }
    uint64_t first = UINT64_MAX;
    for (lf_queue_op *w = q->waiters; w; w = w->next)
        if (w->wake_at < first)
            first = w->wake_at;
    uint64_t now = now_ms();
    uv_timer_start(&q->timer, timer_cb, first > now ? first - now : 0, 0);
}

static void add_waiter(lf_queue *q, lf_queue_op *op)
{
    uint64_t now = now_ms();
    uint64_t wake = now + REPOLL_MS;
    if (op->wake_in && now + op->wake_in < wake)
        wake = now + op->wake_in;
    if (op->deadline < wake)
        wake = op->deadline;
    op->wake_at = wake;
    op->next = NULL;
    lf_queue_op **p = &q->waiters;
    while (*p)
        p = &(*p)->next;
    *p = op;
    q->nwaiters++;
}

/* Resubmits up to n waiters (0 = all) of queue, oldest first. */
static void wake_waiters(lf_queue *q, const char *queue, uint64_t n)
{
    lf_queue_op **p = &q->waiters;
    uint64_t woken = 0;
    while (*p && (n == 0 || woken < n)) {
        lf_queue_op *w = *p;
        if (strcmp(w->queue, queue) == 0) {
            *p = w->next;
            q->nwaiters--;
            submit(q, w);
            woken++;
        } else {
            p = &w->next;
        }
    }
}

static void timer_cb(uv_timer_t *t)
{
    lf_queue *q = t->data;
    uint64_t now = now_ms();
    lf_queue_op **p = &q->waiters;
    while (*p) {
        lf_queue_op *w = *p;
        if (w->wake_at <= now) {
            *p = w->next;
            q->nwaiters--;
            submit(q, w);
        } else {
            p = &w->next;
        }
    }
    rearm_timer(q);
}

static void async_cb(uv_async_t *a)
{
    lf_queue *q = a->data;
    uv_mutex_lock(&q->mu);
    lf_queue_op *op = q->done_head;
    q->done_head = q->done_tail = NULL;
    uv_mutex_unlock(&q->mu);
    uint64_t now = now_ms();
    while (op) {
        lf_queue_op *next = op->next;
        if (op->type == OP_RECEIVE && op->status == 0 && op->nmsgs == 0 && !q->closing &&
            now < op->deadline) {
            add_waiter(q, op);
        } else {
            if (op->status == 0 && q->waiters) {
                if (op->type == OP_SEND && !op->duplicate && op->ms == 0)
                    wake_waiters(q, op->queue, 1);
                else if (op->type == OP_NACK && op->ms == 0)
                    wake_waiters(q, op->queue, 1);
                else if (op->type == OP_REDRIVE && op->count)
                    wake_waiters(q, op->queue, op->count);
            }
            complete(q, op);
        }
        op = next;
    }
    rearm_timer(q);
    if (q->closing)
        finish_close(q);
}

static void handle_closed(uv_handle_t *h)
{
    lf_queue *q = h->data;
    if (--q->handles_open > 0)
        return;
    uv_cond_destroy(&q->cv);
    uv_mutex_destroy(&q->mu);
    if (q->close_cb)
        q->close_cb(q);
    lf_free(q);
}

static void finish_close(lf_queue *q)
{
    if (q->finished || q->outstanding > 0)
        return;
    q->finished = true;
    uv_mutex_lock(&q->mu);
    q->stop = true;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
    uv_thread_join(&q->thread);
    lf_queue_store_close(q->db);
    q->db = NULL;
    q->handles_open = 3;
    uv_close((uv_handle_t *)&q->async, handle_closed);
    uv_close((uv_handle_t *)&q->timer, handle_closed);
    uv_close((uv_handle_t *)&q->prepare, handle_closed);
}

void lf_queue_engine_stats_get(lf_queue *q, lf_queue_engine_stats *out)
{
    uv_mutex_lock(&q->mu);
    *out = q->engine;
    out->pending = q->npend + q->nsub;
    uv_mutex_unlock(&q->mu);
    out->waiting = q->nwaiters;
}

int lf_queue_open(uv_loop_t *loop, const char *path, const lf_queue_options *opt, lf_queue **out)
{
    if (!loop || !out)
        return -EINVAL;
    lf_queue *q = lf_calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    int rc = lf_queue_store_open(path, opt, &q->db);
    if (rc) {
        lf_free(q);
        return rc;
    }
    q->loop = loop;
    q->max_pending = q->db->opt.max_pending;
    if ((rc = uv_mutex_init(&q->mu)) != 0)
        goto fail_db;
    if ((rc = uv_cond_init(&q->cv)) != 0)
        goto fail_mu;
    if ((rc = uv_async_init(loop, &q->async, async_cb)) != 0)
        goto fail_cv;
    q->async.data = q;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    uv_prepare_init(loop, &q->prepare);
    q->prepare.data = q;
    if ((rc = uv_thread_create(&q->thread, writer_main, q)) != 0) {
        /* No thread: close the handles, and free q once they are closed. */
        lf_queue_store_close(q->db);
        q->db = NULL;
        q->finished = true;
        q->handles_open = 3;
        uv_close((uv_handle_t *)&q->async, handle_closed);
        uv_close((uv_handle_t *)&q->timer, handle_closed);
        uv_close((uv_handle_t *)&q->prepare, handle_closed);
        return rc;
    }
    *out = q;
    return 0;
fail_cv:
    uv_cond_destroy(&q->cv);
fail_mu:
    uv_mutex_destroy(&q->mu);
fail_db:
    lf_queue_store_close(q->db);
    lf_free(q);
    return rc;
}

void lf_queue_set_data(lf_queue *q, void *data)
{
    q->data = data;
}

void *lf_queue_data(const lf_queue *q)
{
    return q->data;
}

void lf_queue_close(lf_queue *q, lf_queue_close_cb cb)
{
    if (!q || q->closing)
        return;
    q->closing = true;
    q->close_cb = cb;
    /* Long polls end now, empty-handed: nothing was delivered to them. */
    while (q->waiters) {
        lf_queue_op *w = q->waiters;
        q->waiters = w->next;
        q->nwaiters--;
        w->status = 0;
        complete(q, w);
    }
    uv_timer_stop(&q->timer);
    finish_close(q);
}

int lf_queue_send(lf_queue *q, lf_queue_send_req *req, const char *queue, const void *body,
                  size_t len, const char *dedup_id, uint64_t delay_ms, lf_queue_send_cb cb)
{
    int rc = admit(q);
    if (rc)
        return rc;
    if (!req || !cb || (!body && len))
        return -EINVAL;
    rc = lf_queue_check_send_args(&q->db->opt, queue, len, dedup_id, delay_ms);
    if (rc)
        return rc;
    size_t dlen = dedup_id ? strlen(dedup_id) + 1 : 0;
    lf_queue_op *op = new_op(q, OP_SEND, req, queue, len + dlen);
    if (!op)
        return -ENOMEM;
    char *extra = (char *)(op + 1);
    if (len)
        memcpy(extra, body, len);
    op->body = extra;
    op->len = len;
    if (dedup_id) {
        memcpy(extra + len, dedup_id, dlen);
        op->dedup = extra + len;
    }
    op->ms = delay_ms;
    op->cb.send = cb;
    req->op_ = op;
    start(q, op);
    return 0;
}

int lf_queue_receive(lf_queue *q, lf_queue_receive_req *req, const char *queue, uint32_t max,
                     uint64_t visibility_ms, uint64_t wait_ms, lf_queue_receive_cb cb)
{
    int rc = admit(q);
    if (rc)
        return rc;
    if (!req || !cb || !lf_queue_name_valid(queue) || max == 0 || max > LF_QUEUE_RECEIVE_MAX ||
        visibility_ms == 0 || visibility_ms > LF_QUEUE_VISIBILITY_MAX || wait_ms > LF_QUEUE_WAIT_MAX)
        return -EINVAL;
    lf_queue_op *op = new_op(q, OP_RECEIVE, req, queue, 0);
    if (!op)
        return -ENOMEM;
    op->max = max;
    op->ms = visibility_ms;
    op->deadline = now_ms() + wait_ms;
    op->cb.receive = cb;
    req->op_ = op;
    start(q, op);
    return 0;
}

int lf_queue_ack(lf_queue *q, lf_queue_ack_req *req, const char *queue,
                 const char *const *receipts, size_t n, lf_queue_ack_cb cb)
{
    int rc = admit(q);
    if (rc)
        return rc;
    if (!req || !cb || !lf_queue_name_valid(queue) || (n && !receipts))
        return -EINVAL;
    if (n > LF_QUEUE_ACK_MAX)
        return LF_ELIMIT;
    size_t extra = n * (sizeof(char *) + sizeof(int) + LF_QUEUE_RECEIPT_MAX);
    lf_queue_op *op = new_op(q, OP_ACK, req, queue, extra);
    if (!op)
        return -ENOMEM;
    op->receipts = (const char **)(op + 1);
    op->results = (int *)(op->receipts + n);
    char *s = (char *)(op->results + n);
    for (size_t i = 0; i < n; i++, s += LF_QUEUE_RECEIPT_MAX) {
        /* A receipt too long to be ours is kept truncated; it then matches nothing. */
        const char *r = receipts[i] ? receipts[i] : "";
        size_t l = strnlen(r, LF_QUEUE_RECEIPT_MAX - 1);
        memcpy(s, r, l);
        s[l] = '\0';
        if (strnlen(r, LF_QUEUE_RECEIPT_MAX) >= LF_QUEUE_RECEIPT_MAX)
            s[0] = '\0';
        op->receipts[i] = s;
        op->results[i] = -ENOENT;
    }
    op->nreceipts = n;
    op->cb.ack = cb;
    req->op_ = op;
    start(q, op);
    return 0;
}

static int receipt_op(lf_queue *q, enum op_type type, lf_queue_op_req *req, const char *queue,
                      const char *receipt, uint64_t ms, uint64_t limit, lf_queue_op_cb cb)
{
    int rc = admit(q);
    if (rc)
        return rc;
    if (!req || !cb || !receipt || !lf_queue_name_valid(queue) || ms > limit ||
        strnlen(receipt, LF_QUEUE_RECEIPT_MAX) >= LF_QUEUE_RECEIPT_MAX)
        return -EINVAL;
    size_t rlen = strlen(receipt) + 1;
    lf_queue_op *op = new_op(q, type, req, queue, sizeof(char *) + rlen);
    if (!op)
        return -ENOMEM;
    op->receipts = (const char **)(op + 1);
    char *s = (char *)(op->receipts + 1);
    memcpy(s, receipt, rlen);
    op->receipts[0] = s;
    op->nreceipts = 1;
    op->ms = ms;
    op->cb.op = cb;
    req->op_ = op;
    start(q, op);
    return 0;
}

int lf_queue_extend(lf_queue *q, lf_queue_op_req *req, const char *queue, const char *receipt,
                    uint64_t visibility_ms, lf_queue_op_cb cb)
{
    return receipt_op(q, OP_EXTEND, req, queue, receipt, visibility_ms, LF_QUEUE_VISIBILITY_MAX,
                      cb);
}

int lf_queue_nack(lf_queue *q, lf_queue_op_req *req, const char *queue, const char *receipt,
                  uint64_t delay_ms, lf_queue_op_cb cb)
{
    return receipt_op(q, OP_NACK, req, queue, receipt, delay_ms, LF_QUEUE_DELAY_MAX, cb);
}

static int simple_op(lf_queue *q, enum op_type type, lf_queue_op_req *req, const char *queue,
                     uint64_t max, lf_queue_op_cb cb)
{
    int rc = admit(q);
    if (rc)
        return rc;
    if (!req || !cb || (queue && !lf_queue_name_valid(queue)))
        return -EINVAL;
    lf_queue_op *op = new_op(q, type, req, queue, 0);
    if (!op)
        return -ENOMEM;
    op->max = max;
    op->cb.op = cb;
    req->op_ = op;
    start(q, op);
    return 0;
}

int lf_queue_redrive(lf_queue *q, lf_queue_op_req *req, const char *queue, uint64_t max,
                     lf_queue_op_cb cb)
{
    if (!queue || lf_queue_store_is_dlq(queue) || max > INT64_MAX)
        return -EINVAL;
    return simple_op(q, OP_REDRIVE, req, queue, max, cb);
}

int lf_queue_stats(lf_queue *q, lf_queue_op_req *req, const char *queue, lf_queue_op_cb cb)
{
    if (!queue)
        return -EINVAL;
    return simple_op(q, OP_STATS, req, queue, 0, cb);
}

int lf_queue_peek(lf_queue *q, lf_queue_op_req *req, const char *queue, uint32_t max,
                  lf_queue_op_cb cb)
{
    if (!queue || max == 0 || max > LF_QUEUE_RECEIVE_MAX)
        return -EINVAL;
    return simple_op(q, OP_PEEK, req, queue, max, cb);
}

int lf_queue_check(lf_queue *q, lf_queue_op_req *req, lf_queue_op_cb cb)
{
    return simple_op(q, OP_CHECK, req, NULL, 0, cb);
}
