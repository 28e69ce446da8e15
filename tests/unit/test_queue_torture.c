/* Failure injection (curl's torture idea): a scenario of sends, a receive, acks, a nack and stats
 * through the asynchronous API is run with the Nth allocation, write or fsync failing, for N = 1, 2,
 * ... until the scenario no longer reaches the Nth call. Every time: no crash, no leak (ASan build),
 * failures reported as codes, and after the failure stops the store passes its check, every send
 * that completed with 0 is there (unless its ack completed with 0) and the queue works again.
 * Sticky write and fsync failures: every send fails with -ENOSPC / -EIO (never a false success),
 * and the queue recovers once the failure stops. */
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

#define NSEND 6

static char dir[64], path[128];

static void rm_store(void)
{
    char p[256];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

struct scen {
    uv_loop_t loop;
    lf_queue *q;
    int pending;
    lf_queue_send_req sreq[NSEND];
    int sstatus[NSEND];
    uint64_t sid[NSEND];
    lf_queue_receive_req rreq;
    int rstatus;
    size_t nrecv;
    char receipts[4][LF_QUEUE_RECEIPT_MAX];
    uint64_t rid[4];
    lf_queue_ack_req areq;
    const char *rp[2];
    int astatus;
    int aresults[2];
    lf_queue_op_req nreq, streq;
    int nstatus, ststatus;
    int bad_codes;
};

static bool plausible(int status)
{
    return status == 0 || status == -ENOMEM || status == -EIO || status == -ENOSPC ||
           status == -ENOENT || status == LF_EDB;
}

static void on_sent(lf_queue_send_req *req, int status)
{
    struct scen *s = req->data;
    size_t i = (size_t)(req - s->sreq);
    s->sstatus[i] = status;
    s->sid[i] = req->id;
    s->bad_codes += !plausible(status);
    s->pending--;
}

static void on_received(lf_queue_receive_req *req, int status)
{
    struct scen *s = req->data;
    s->rstatus = status;
    s->bad_codes += !plausible(status);
    if (status == 0) {
        s->nrecv = req->count;
        for (size_t i = 0; i < req->count && i < 4; i++) {
            memcpy(s->receipts[i], req->msgs[i].receipt, LF_QUEUE_RECEIPT_MAX);
            s->rid[i] = req->msgs[i].id;
        }
    }
    s->pending--;
}

static void on_acked(lf_queue_ack_req *req, int status)
{
    struct scen *s = req->data;
    s->astatus = status;
    s->bad_codes += !plausible(status);
    for (size_t i = 0; i < req->count && i < 2; i++)
        s->aresults[i] = req->results[i];
    s->pending--;
}

static void on_op(lf_queue_op_req *req, int status)
{
    struct scen *s = req->data;
    s->bad_codes += !plausible(status);
    s->pending--;
}

static void wait_pending(struct scen *s)
{
    uint64_t t0 = uv_hrtime();
    while (s->pending > 0) {
        assert_true(uv_hrtime() - t0 < 20ull * 1000 * 1000 * 1000);
        uv_run(&s->loop, UV_RUN_ONCE);
    }
}

/* Runs the scenario with the failure armed; returns true when the failure point was reached. */
static bool scenario(enum lf_fail_kind kind, uint64_t nth)
{
    struct scen *s = calloc(1, sizeof *s);
    uv_loop_init(&s->loop);
    lf_fail_arm(kind, nth, false);
    int rc = lf_queue_open(&s->loop, path, NULL, &s->q);
    if (rc == 0) {
        for (int i = 0; i < NSEND; i++) {
            char body[16];
            snprintf(body, sizeof body, "m%d", i);
            s->sreq[i].data = s;
            s->sstatus[i] = 1;
            if (lf_queue_send(s->q, &s->sreq[i], "t", body, strlen(body), i == 0 ? "dd" : NULL, 0,
                              on_sent) == 0)
                s->pending++;
        }
        wait_pending(s);
        s->rreq.data = s;
        s->rstatus = 1;
        if (lf_queue_receive(s->q, &s->rreq, "t", 4, 60000, 0, on_received) == 0) {
            s->pending++;
            wait_pending(s);
        }
        s->astatus = 1;
        if (s->rstatus == 0 && s->nrecv >= 3) {
            s->rp[0] = s->receipts[0];
            s->rp[1] = s->receipts[1];
            s->areq.data = s;
            if (lf_queue_ack(s->q, &s->areq, "t", s->rp, 2, on_acked) == 0)
                s->pending++;
            s->nreq.data = s;
            if (lf_queue_nack(s->q, &s->nreq, "t", s->receipts[2], 0, on_op) == 0)
                s->pending++;
        }
        s->streq.data = s;
        if (lf_queue_stats(s->q, &s->streq, "t", on_op) == 0)
            s->pending++;
        wait_pending(s);
        lf_queue_close(s->q, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
    } else {
        assert_true(rc == -ENOMEM || rc == -EIO || rc == -ENOSPC || rc == LF_EDB);
    }
    bool reached = lf_fail_calls(kind) >= nth;
    lf_fail_disarm(kind);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    assert_int_equal(s->bad_codes, 0);

    /* The failure stopped: the store opens, is consistent and holds what was confirmed. */
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(path, NULL, &db), 0);
    char *report;
    assert_int_equal(lf_queue_db_check(db, &report), 0);
    lf_free(report);
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_peek(db, "t", 100, &m, &n), 0);
    bool acked[NSEND + 1] = {false};
    for (int i = 0; i < 2; i++)
        if (s->astatus == 0 && s->aresults[i] == 0)
            for (int k = 0; k < NSEND; k++)
                if (s->sstatus[k] == 0 && s->sid[k] == s->rid[i])
                    acked[k] = true;
    for (int k = 0; k < NSEND; k++) {
        bool present = false;
        for (size_t i = 0; i < n; i++)
            present |= m[i].id == s->sid[k];
        if (s->sstatus[k] == 0 && !acked[k] && !present)
            fail_msg("kind %d nth %llu: send %d confirmed but missing", kind,
                     (unsigned long long)nth, k);
        if (acked[k] && present)
            fail_msg("kind %d nth %llu: ack of send %d confirmed but message present", kind,
                     (unsigned long long)nth, k);
    }
    lf_queue_msgs_free(m, n);
    uint64_t id;
    assert_int_equal(lf_queue_db_send(db, "t2", "ok", 2, NULL, 0, &id, NULL), 0);
    assert_int_equal(lf_queue_db_receive(db, "t2", 1, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_queue_db_ack(db, "t2", m[0].receipt), 0);
    lf_queue_msgs_free(m, n);
    lf_queue_db_close(db);
    rm_store();
    free(s);
    return reached;
}

static void torture(enum lf_fail_kind kind, const char *name)
{
    uint64_t nth = 1;
    while (scenario(kind, nth)) {
        nth++;
        assert_true(nth < 2000);
    }
    print_message("%s: scenario survived a failure at each of %llu points\n", name,
                  (unsigned long long)(nth - 1));
    assert_true(nth > 2);
}

static void torture_alloc(void **state)
{
    torture(LF_FAIL_ALLOC, "alloc");
}

static void torture_write(void **state)
{
    torture(LF_FAIL_WRITE, "write");
}

static void torture_fsync(void **state)
{
    torture(LF_FAIL_FSYNC, "fsync");
}

struct sticky {
    int calls, ok, failed, other;
    int last;
};

static void on_sticky(lf_queue_send_req *req, int status)
{
    struct sticky *st = req->data;
    st->calls++;
    st->last = status;
    if (status == 0)
        st->ok++;
}

static void sticky(enum lf_fail_kind kind, int expect)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_queue *q;
    assert_int_equal(lf_queue_open(&loop, path, NULL, &q), 0);
    lf_fail_arm(kind, 1, true);
    enum { N = 20 };
    lf_queue_send_req reqs[N];
    struct sticky st = {0};
    for (int round = 0; round < 3; round++) {
        memset(&st, 0, sizeof st);
        for (int i = 0; i < N; i++) {
            reqs[i].data = &st;
            assert_int_equal(lf_queue_send(q, &reqs[i], "s", "x", 1, NULL, 0, on_sticky), 0);
        }
        while (st.calls < N)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(st.ok, 0); /* never a false success */
        assert_int_equal(st.last, expect);
    }
    lf_fail_disarm(kind);
    memset(&st, 0, sizeof st);
    for (int i = 0; i < N; i++) {
        reqs[i].data = &st;
        assert_int_equal(lf_queue_send(q, &reqs[i], "s", "x", 1, NULL, 0, on_sticky), 0);
    }
    while (st.calls < N)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.ok, N); /* works again once the failure stops */
    lf_queue_close(q, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(path, NULL, &db), 0);
    lf_queue_statistics s;
    assert_int_equal(lf_queue_db_stats(db, "s", &s), 0);
    assert_true(s.depth >= N);
    lf_queue_db_close(db);
    rm_store();
}

static void sticky_write_failure(void **state)
{
    sticky(LF_FAIL_WRITE, -ENOSPC);
}

static void sticky_fsync_failure(void **state)
{
    sticky(LF_FAIL_FSYNC, -EIO);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    strcpy(dir, "/tmp/lfq-torture-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/q.db", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(torture_alloc),
        cmocka_unit_test(torture_write),
        cmocka_unit_test(torture_fsync),
        cmocka_unit_test(sticky_write_failure),
        cmocka_unit_test(sticky_fsync_failure),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rm_store();
    rmdir(dir);
    return rc;
}
