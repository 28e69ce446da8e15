/* The asynchronous queue API on a real loop: callbacks on the loop after commit, group commit,
 * long polls (woken by a send, by a visibility timeout, expiring empty), multi-receipt acks,
 * extend/nack/redrive/stats/peek/check, close finishing pending operations, failed calls never
 * calling back, backpressure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_log.h"
#include "lf_queue.h"

struct fx {
    char dir[64];
    char path[128];
    uv_loop_t loop;
    lf_queue *q;
    lf_queue_options opt;
    int closed;
};

static void rm_store(const char *path)
{
    char p[256];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void on_closed(lf_queue *q)
{
    (void)q;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/lfq-async-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    uv_loop_init(&f->loop);
    lf_queue_options_init(&f->opt);
    f->opt.max_receives = 2;
    assert_int_equal(lf_queue_open(&f->loop, f->path, &f->opt, &f->q), 0);
    *state = f;
    return 0;
}

static void close_queue(struct fx *f)
{
    if (f->q) {
        lf_queue_close(f->q, on_closed);
        f->q = NULL;
        assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close_queue(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rm_store(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs the loop until *flag becomes nonzero (bounded). */
static void run_until(struct fx *f, int *flag)
{
    uint64_t start = uv_hrtime();
    while (!*flag) {
        assert_true(uv_hrtime() - start < 10ull * 1000 * 1000 * 1000);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* ---- send ---- */
struct sent_rec {
    int calls, status;
    uint64_t id;
    bool dup;
};

static void on_sent(lf_queue_send_req *req, int status)
{
    struct sent_rec *r = req->data;
    r->calls++;
    r->status = status;
    r->id = req->id;
    r->dup = req->duplicate;
}

static uint64_t send_sync(struct fx *f, const char *q, const char *body, const char *dedup)
{
    lf_queue_send_req req;
    struct sent_rec r = {0};
    req.data = &r;
    assert_int_equal(lf_queue_send(f->q, &req, q, body, strlen(body), dedup, 0, on_sent), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    return r.id;
}

/* ---- receive ---- */
struct recv_rec {
    int calls, status;
    size_t count;
    lf_queue_msg msgs[16];
    char bodies[16][64];
    uint64_t at;
};

static void on_received(lf_queue_receive_req *req, int status)
{
    struct recv_rec *r = req->data;
    r->calls++;
    r->status = status;
    r->count = req->count;
    r->at = uv_hrtime();
    for (size_t i = 0; i < req->count && i < 16; i++) {
        r->msgs[i] = req->msgs[i];
        snprintf(r->bodies[i], sizeof r->bodies[i], "%s", (char *)req->msgs[i].body);
        r->msgs[i].body = r->bodies[i]; /* the library's copy is freed after the callback */
    }
}

static void receive_sync(struct fx *f, const char *q, uint32_t max, uint64_t vis, uint64_t wait,
                         struct recv_rec *r)
{
    lf_queue_receive_req req;
    memset(r, 0, sizeof *r);
    req.data = r;
    assert_int_equal(lf_queue_receive(f->q, &req, q, max, vis, wait, on_received), 0);
    run_until(f, &r->calls);
    assert_int_equal(r->status, 0);
}

/* ---- generic ---- */
struct op_rec {
    int calls, status;
    uint64_t count;
    lf_queue_statistics stats;
    size_t nmsgs;
    char report[512];
};

static void on_op(lf_queue_op_req *req, int status)
{
    struct op_rec *r = req->data;
    r->calls++;
    r->status = status;
    r->count = req->count;
    r->stats = req->stats;
    r->nmsgs = req->nmsgs;
    if (req->report)
        snprintf(r->report, sizeof r->report, "%s", req->report);
}

static lf_queue_statistics stats_sync(struct fx *f, const char *q)
{
    lf_queue_op_req req;
    struct op_rec r = {0};
    req.data = &r;
    assert_int_equal(lf_queue_stats(f->q, &req, q, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, 0);
    return r.stats;
}

struct ack_rec {
    int calls, status;
    int results[3];
    size_t acked, count;
};

static void on_acked(lf_queue_ack_req *req, int status)
{
    struct ack_rec *ar = req->data;
    ar->calls++;
    ar->status = status;
    ar->acked = req->acked;
    ar->count = req->count;
    for (size_t i = 0; i < req->count && i < 3; i++)
        ar->results[i] = req->results[i];
}

static void send_receive_ack_async(void **state)
{
    struct fx *f = *state;
    uint64_t a = send_sync(f, "jobs", "one", "d1");
    uint64_t b = send_sync(f, "jobs", "two", NULL);
    assert_true(b > a);
    /* dedup through the async path */
    lf_queue_send_req req;
    struct sent_rec r = {0};
    req.data = &r;
    assert_int_equal(lf_queue_send(f->q, &req, "jobs", "x", 1, "d1", 0, on_sent), 0);
    run_until(f, &r.calls);
    assert_true(r.dup);
    assert_int_equal(r.id, a);
    struct recv_rec rr;
    receive_sync(f, "jobs", 10, 30000, 0, &rr);
    assert_int_equal(rr.count, 2);
    assert_string_equal(rr.msgs[0].body, "one");
    assert_string_equal(rr.msgs[1].body, "two");
    /* ack both plus a stale one, in one commit */
    const char *receipts[3] = {rr.msgs[0].receipt, "1.9.0000000000000000", rr.msgs[1].receipt};
    lf_queue_ack_req areq;
    struct ack_rec ar = {0};
    areq.data = &ar;
    assert_int_equal(lf_queue_ack(f->q, &areq, "jobs", receipts, 3, NULL), -EINVAL);
    assert_int_equal(lf_queue_ack(f->q, &areq, "jobs", receipts, 3, on_acked), 0);
    run_until(f, &ar.calls);
    assert_int_equal(ar.status, 0);
    assert_int_equal(ar.count, 3);
    assert_int_equal(ar.acked, 2);
    assert_int_equal(ar.results[0], 0);
    assert_int_equal(ar.results[1], -ENOENT);
    assert_int_equal(ar.results[2], 0);
    lf_queue_statistics s = stats_sync(f, "jobs");
    assert_int_equal(s.sent, 2);
    assert_int_equal(s.acked, 2);
    assert_int_equal(s.depth + s.in_flight, 0);
}

/* ---- long polls ---- */
struct delayed_send {
    uv_timer_t timer;
    struct fx *f;
    lf_queue_send_req req;
    struct sent_rec rec;
};

static void do_delayed_send(uv_timer_t *t)
{
    struct delayed_send *d = t->data;
    d->req.data = &d->rec;
    assert_int_equal(lf_queue_send(d->f->q, &d->req, "lp", "wake", 4, NULL, 0, on_sent), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void long_poll_woken_by_send(void **state)
{
    struct fx *f = *state;
    struct delayed_send d = {.f = f};
    uv_update_time(&f->loop);
    uv_timer_init(&f->loop, &d.timer);
    d.timer.data = &d;
    uv_timer_start(&d.timer, do_delayed_send, 200, 0);
    uint64_t t0 = uv_hrtime();
    struct recv_rec rr;
    receive_sync(f, "lp", 5, 30000, 20000, &rr);
    uint64_t ms = (rr.at - t0) / 1000000;
    assert_int_equal(rr.count, 1);
    assert_string_equal(rr.msgs[0].body, "wake");
    assert_true(ms >= 190);
    assert_true(ms < 1500); /* woken by the commit, long before the 20 s wait */
    run_until(f, &d.rec.calls);
}

static void long_poll_expires_empty(void **state)
{
    struct fx *f = *state;
    uint64_t t0 = uv_hrtime();
    struct recv_rec rr;
    receive_sync(f, "empty", 5, 30000, 300, &rr);
    uint64_t ms = (rr.at - t0) / 1000000;
    assert_int_equal(rr.count, 0);
    assert_true(ms >= 290);
    assert_true(ms < 3000);
}

static void long_poll_woken_by_visibility_timeout(void **state)
{
    struct fx *f = *state;
    send_sync(f, "vt", "again", NULL);
    struct recv_rec rr, rr2;
    receive_sync(f, "vt", 1, 400, 0, &rr);
    assert_int_equal(rr.count, 1);
    uint64_t t0 = uv_hrtime();
    receive_sync(f, "vt", 1, 30000, 10000, &rr2);
    uint64_t ms = (rr2.at - t0) / 1000000;
    assert_int_equal(rr2.count, 1);
    assert_int_equal(rr2.msgs[0].id, rr.msgs[0].id);
    assert_int_equal(rr2.msgs[0].receive_count, 2);
    assert_true(ms >= 300);
    assert_true(ms < 2500);
    lf_queue_statistics s = stats_sync(f, "vt");
    assert_int_equal(s.expired_redeliveries, 1);
}

static void many_waiters_one_message_each(void **state)
{
    struct fx *f = *state;
    enum { W = 8 };
    lf_queue_receive_req reqs[W];
    struct recv_rec recs[W];
    for (int i = 0; i < W; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        reqs[i].data = &recs[i];
        assert_int_equal(lf_queue_receive(f->q, &reqs[i], "mw", 1, 30000, 5000, on_received), 0);
    }
    /* let them all start waiting */
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(5000);
    lf_queue_send_req sreqs[W];
    struct sent_rec srecs[W];
    for (int i = 0; i < W; i++) {
        memset(&srecs[i], 0, sizeof srecs[i]);
        sreqs[i].data = &srecs[i];
        assert_int_equal(lf_queue_send(f->q, &sreqs[i], "mw", "m", 1, NULL, 0, on_sent), 0);
    }
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < W; i++)
        run_until(f, &recs[i].calls);
    assert_true((uv_hrtime() - t0) / 1000000 < 2000);
    uint64_t seen = 0;
    for (int i = 0; i < W; i++) {
        assert_int_equal(recs[i].count, 1);
        seen += recs[i].msgs[0].id;
    }
    assert_int_equal(seen, (uint64_t)W * (W + 1) / 2); /* ids 1..8, each delivered once */
}

static void extend_nack_redrive_peek_check(void **state)
{
    struct fx *f = *state; /* max_receives = 2 */
    send_sync(f, "w", "poison", NULL);
    struct recv_rec rr;
    receive_sync(f, "w", 1, 30000, 0, &rr);
    lf_queue_op_req req;
    struct op_rec r = {0};
    req.data = &r;
    assert_int_equal(lf_queue_extend(f->q, &req, "w", rr.msgs[0].receipt, 60000, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_nack(f->q, &req, "w", rr.msgs[0].receipt, 0, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_nack(f->q, &req, "w", rr.msgs[0].receipt, 0, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, -ENOENT);
    receive_sync(f, "w", 1, 30000, 0, &rr);
    assert_int_equal(rr.msgs[0].receive_count, 2);
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_nack(f->q, &req, "w", rr.msgs[0].receipt, 0, on_op), 0);
    run_until(f, &r.calls);
    /* third delivery would pass max_receives = 2 */
    receive_sync(f, "w", 1, 30000, 0, &rr);
    assert_int_equal(rr.count, 0);
    lf_queue_statistics s = stats_sync(f, "w");
    assert_int_equal(s.dlq_depth, 1);
    assert_int_equal(s.dead_lettered, 1);
    assert_int_equal(s.nacked, 2);
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_peek(f->q, &req, "w.dlq", 10, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.nmsgs, 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_redrive(f->q, &req, "w", 0, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.count, 1);
    receive_sync(f, "w", 1, 30000, 0, &rr);
    assert_int_equal(rr.count, 1);
    assert_string_equal(rr.msgs[0].body, "poison");
    memset(&r, 0, sizeof r);
    assert_int_equal(lf_queue_check(f->q, &req, on_op), 0);
    run_until(f, &r.calls);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.report, "ok");
}

static int never_called;
static void must_not_run_send(lf_queue_send_req *req, int status)
{
    never_called++;
}
static void must_not_run_recv(lf_queue_receive_req *req, int status)
{
    never_called++;
}
static void must_not_run_op(lf_queue_op_req *req, int status)
{
    never_called++;
}

static void failed_calls_never_call_back(void **state)
{
    struct fx *f = *state;
    lf_queue_send_req sreq;
    lf_queue_receive_req rreq;
    lf_queue_op_req oreq;
    char big[300 * 1024];
    memset(big, 'x', sizeof big);
    never_called = 0;
    assert_int_equal(lf_queue_send(f->q, &sreq, "q", big, sizeof big, NULL, 0, must_not_run_send),
                     LF_ELIMIT);
    assert_int_equal(lf_queue_send(f->q, &sreq, "b a d", "x", 1, NULL, 0, must_not_run_send),
                     -EINVAL);
    assert_int_equal(lf_queue_send(f->q, &sreq, "q", "x", 1, NULL, LF_QUEUE_DELAY_MAX + 1,
                                   must_not_run_send), -EINVAL);
    assert_int_equal(lf_queue_receive(f->q, &rreq, "q", 0, 1000, 0, must_not_run_recv), -EINVAL);
    assert_int_equal(lf_queue_receive(f->q, &rreq, "q", 1, 0, 0, must_not_run_recv), -EINVAL);
    assert_int_equal(lf_queue_receive(f->q, &rreq, "q", 1, 1000, LF_QUEUE_WAIT_MAX + 1,
                                      must_not_run_recv), -EINVAL);
    assert_int_equal(lf_queue_extend(f->q, &oreq, "q", NULL, 1000, must_not_run_op), -EINVAL);
    assert_int_equal(lf_queue_redrive(f->q, &oreq, "q.dlq", 0, must_not_run_op), -EINVAL);
    assert_int_equal(lf_queue_peek(f->q, &oreq, "q", 0, must_not_run_op), -EINVAL);
    /* allocation failure at submission */
    lf_fail_arm(LF_FAIL_ALLOC, 1, false);
    assert_int_equal(lf_queue_send(f->q, &sreq, "q", "x", 1, NULL, 0, must_not_run_send), -ENOMEM);
    lf_fail_disarm(LF_FAIL_ALLOC);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(never_called, 0);
}

static void close_finishes_pending_and_reopen_keeps_them(void **state)
{
    struct fx *f = *state;
    enum { N = 300 };
    lf_queue_send_req *reqs = calloc(N, sizeof *reqs);
    struct sent_rec *recs = calloc(N, sizeof *recs);
    for (int i = 0; i < N; i++) {
        char b[32];
        snprintf(b, sizeof b, "m%d", i);
        reqs[i].data = &recs[i];
        assert_int_equal(lf_queue_send(f->q, &reqs[i], "c", b, strlen(b), NULL, 0, on_sent), 0);
    }
    /* a waiting long poll ends at close, empty */
    lf_queue_receive_req rreq;
    struct recv_rec rr = {0};
    rreq.data = &rr;
    assert_int_equal(lf_queue_receive(f->q, &rreq, "nothing", 1, 1000, 60000, on_received), 0);
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(2000);
    lf_queue_engine_stats es;
    lf_queue_engine_stats_get(f->q, &es);
    lf_queue *q = f->q;
    lf_queue_close(q, on_closed);
    f->q = NULL;
    lf_queue_send_req late;
    assert_int_equal(lf_queue_send(q, &late, "c", "x", 1, NULL, 0, must_not_run_send), LF_ECLOSED);
    /* The long poll ends at close (at once if it was waiting, else when it comes back from the
     * writer), not after its 60 s. */
    uint64_t t0 = uv_hrtime();
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true((uv_hrtime() - t0) / 1000000 < 10000);
    assert_int_equal(rr.calls, 1);
    assert_int_equal(rr.count, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].status, 0);
    }
    free(reqs);
    free(recs);
    assert_int_equal(lf_queue_open(&f->loop, f->path, &f->opt, &f->q), 0);
    lf_queue_statistics s = stats_sync(f, "c");
    assert_int_equal(s.depth, N);
    assert_int_equal(s.sent, N);
    lf_queue_engine_stats_get(f->q, &es);
    assert_int_equal(es.failed_commits, 0);
}

static void group_commit_batches(void **state)
{
    struct fx *f = *state;
    enum { N = 500 };
    lf_queue_send_req *reqs = calloc(N, sizeof *reqs);
    struct sent_rec *recs = calloc(N, sizeof *recs);
    lf_queue_engine_stats before, after;
    lf_queue_engine_stats_get(f->q, &before);
    for (int i = 0; i < N; i++) {
        reqs[i].data = &recs[i];
        assert_int_equal(lf_queue_send(f->q, &reqs[i], "g", "x", 1, NULL, 0, on_sent), 0);
    }
    for (int i = 0; i < N; i++)
        run_until(f, &recs[i].calls);
    lf_queue_engine_stats_get(f->q, &after);
    /* submitted in one loop iteration: far fewer commits than sends */
    assert_true(after.commits - before.commits <= 5);
    assert_int_equal(after.committed_ops - before.committed_ops, N);
    free(reqs);
    free(recs);
}

static void backpressure(void **state)
{
    struct fx *f = *state;
    close_queue(f);
    f->opt.max_pending = 10;
    assert_int_equal(lf_queue_open(&f->loop, f->path, &f->opt, &f->q), 0);
    lf_queue_send_req reqs[11];
    struct sent_rec recs[11] = {{0}};
    for (int i = 0; i < 10; i++) {
        reqs[i].data = &recs[i];
        assert_int_equal(lf_queue_send(f->q, &reqs[i], "bp", "x", 1, NULL, 0, on_sent), 0);
    }
    assert_int_equal(lf_queue_send(f->q, &reqs[10], "bp", "x", 1, NULL, 0, on_sent), -EAGAIN);
    for (int i = 0; i < 10; i++)
        run_until(f, &recs[i].calls);
    reqs[10].data = &recs[10];
    assert_int_equal(lf_queue_send(f->q, &reqs[10], "bp", "x", 1, NULL, 0, on_sent), 0);
    run_until(f, &recs[10].calls);
}

/* Another handle on the same store (as a command-line tool in another process would have): its send
 * reaches a waiting long poll within about a second, its stats see the queue's commits. */
static void second_handle_on_the_same_store(void **state)
{
    struct fx *f = *state;
    send_sync(f, "x", "from loop", NULL);
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), 0);
    lf_queue_statistics s;
    assert_int_equal(lf_queue_db_stats(db, "x", &s), 0);
    assert_int_equal(s.depth, 1);
    struct recv_rec rr;
    receive_sync(f, "x", 10, 30000, 0, &rr);
    assert_int_equal(rr.count, 1);
    lf_queue_receive_req req;
    memset(&rr, 0, sizeof rr);
    req.data = &rr;
    assert_int_equal(lf_queue_receive(f->q, &req, "x", 10, 30000, 5000, on_received), 0);
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(5000);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(lf_queue_db_send(db, "x", "from tool", 9, NULL, 0, NULL, NULL), 0);
    run_until(f, &rr.calls);
    assert_int_equal(rr.count, 1);
    assert_string_equal(rr.msgs[0].body, "from tool");
    assert_true((uv_hrtime() - t0) / 1000000 < 2500);
    lf_queue_db_close(db);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(send_receive_ack_async, setup, teardown),
        cmocka_unit_test_setup_teardown(long_poll_woken_by_send, setup, teardown),
        cmocka_unit_test_setup_teardown(long_poll_expires_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(long_poll_woken_by_visibility_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(many_waiters_one_message_each, setup, teardown),
        cmocka_unit_test_setup_teardown(extend_nack_redrive_peek_check, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_calls_never_call_back, setup, teardown),
        cmocka_unit_test_setup_teardown(close_finishes_pending_and_reopen_keeps_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(group_commit_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(second_handle_on_the_same_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
