/* Model-based random test: thousands of random operations (sends with and without dedup ids and
 * delays, receives, acks, nacks and extends with current and stale receipts, redrives, clock steps,
 * reopens) run against the store and against a small in-memory model of SQS semantics; every
 * result, delivered message and statistic must agree, and the store must pass its check. */
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

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue.h"

#define MAXM 4000
#define MAXR 8000
#define MAX_RECEIVES 3
#define DEDUP_MS 3000

static uint64_t now = 1800000000000ull;
static uint64_t clock_fn(void *arg)
{
    return now;
}

struct mmsg {
    bool exists, dead;
    uint64_t visible_at;
    uint32_t count;
    char receipt[LF_QUEUE_RECEIPT_MAX]; /* "" = none */
    char body[24];
};

static struct mmsg M[MAXM];
static char receipts[MAXR][LF_QUEUE_RECEIPT_MAX];
static size_t nreceipts;
static struct {
    uint64_t id, expires;
} dedup[8];
static struct {
    uint64_t sent, received, acked, nacked, dead, redriven, expired;
} T;
static unsigned seed;

static unsigned rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

static int find_by_receipt(const char *r)
{
    for (int id = 1; id < MAXM; id++)
        if (M[id].exists && M[id].receipt[0] && strcmp(M[id].receipt, r) == 0)
            return id;
    return -1;
}

static void model_receive(uint32_t max, uint64_t vis, int *out, size_t *n)
{
    *n = 0;
    while (*n < max) {
        int best = -1;
        for (int id = 1; id < MAXM; id++) {
            if (!M[id].exists || M[id].dead || M[id].visible_at > now)
                continue;
            if (best < 0 || M[id].visible_at < M[best].visible_at)
                best = id;
        }
        if (best < 0)
            break;
        struct mmsg *m = &M[best];
        if (m->count >= MAX_RECEIVES) {
            m->dead = true;
            m->visible_at = now;
            m->receipt[0] = '\0';
            T.dead++;
            continue;
        }
        if (m->receipt[0])
            T.expired++;
        m->count++;
        m->visible_at = now + vis;
        T.received++;
        out[(*n)++] = best;
    }
}

static void compare_stats(lf_queue_db *db)
{
    lf_queue_statistics s;
    assert_int_equal(lf_queue_db_stats(db, "m", &s), 0);
    uint64_t depth = 0, infl = 0, delayed = 0, dlq = 0;
    for (int id = 1; id < MAXM; id++) {
        struct mmsg *m = &M[id];
        if (!m->exists)
            continue;
        if (m->dead)
            dlq++;
        else if (m->visible_at <= now)
            depth++;
        else if (m->receipt[0])
            infl++;
        else
            delayed++;
    }
    assert_int_equal(s.depth, depth);
    assert_int_equal(s.in_flight, infl);
    assert_int_equal(s.delayed, delayed);
    assert_int_equal(s.dlq_depth, dlq);
    assert_int_equal(s.sent, T.sent);
    assert_int_equal(s.received, T.received);
    assert_int_equal(s.acked, T.acked);
    assert_int_equal(s.nacked, T.nacked);
    assert_int_equal(s.dead_lettered, T.dead);
    assert_int_equal(s.redriven, T.redriven);
    assert_int_equal(s.expired_redeliveries, T.expired);
}

static void random_operations(void **state)
{
    char dir[] = "/tmp/lfq-model-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.clock_ms = clock_fn;
    opt.max_receives = MAX_RECEIVES;
    opt.dedup_window_ms = DEDUP_MS;
    opt.dlq_max_age_ms = 0;
    opt.skip_open_check = true;
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(path, &opt, &db), 0);
    seed = (unsigned)getpid();
    print_message("model test seed %u\n", seed);
    for (int step = 0; step < 3000; step++) {
        unsigned op = rnd(100);
        if (op < 30) { /* send */
            char body[24];
            snprintf(body, sizeof body, "s%d", step);
            int d = rnd(3) == 0 ? (int)rnd(8) : -1;
            char did[8];
            snprintf(did, sizeof did, "d%d", d);
            uint64_t delay = rnd(4) == 0 ? rnd(2000) : 0;
            uint64_t id;
            bool dup;
            assert_int_equal(lf_queue_db_send(db, "m", body, strlen(body), d >= 0 ? did : NULL,
                                              delay, &id, &dup), 0);
            if (d >= 0 && dedup[d].id && dedup[d].expires > now) {
                assert_true(dup);
                assert_int_equal(id, dedup[d].id);
                continue;
            }
            assert_false(dup);
            assert_true(id < MAXM);
            assert_false(M[id].exists);
            M[id].exists = true;
            M[id].visible_at = now + delay;
            snprintf(M[id].body, sizeof M[id].body, "%s", body);
            T.sent++;
            if (d >= 0) {
                dedup[d].id = id;
                dedup[d].expires = now + DEDUP_MS;
            }
        } else if (op < 50) { /* receive */
            uint32_t max = 1 + rnd(5);
            uint64_t vis = 100 + rnd(2000);
            int expect[8];
            size_t ne;
            model_receive(max, vis, expect, &ne);
            lf_queue_msg *msgs;
            size_t n;
            assert_int_equal(lf_queue_db_receive(db, "m", max, vis, &msgs, &n), 0);
            assert_int_equal(n, ne);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(msgs[i].id, (uint64_t)expect[i]);
                struct mmsg *m = &M[expect[i]];
                assert_int_equal(msgs[i].receive_count, m->count);
                assert_string_equal(msgs[i].body, m->body);
                snprintf(m->receipt, sizeof m->receipt, "%s", msgs[i].receipt);
                if (nreceipts < MAXR)
                    snprintf(receipts[nreceipts++], LF_QUEUE_RECEIPT_MAX, "%s", msgs[i].receipt);
            }
            lf_queue_msgs_free(msgs, n);
        } else if (op < 75 && nreceipts) { /* ack, nack or extend with a current or stale receipt */
            const char *r = receipts[rnd((unsigned)nreceipts)];
            int id = find_by_receipt(r);
            unsigned kind = rnd(3);
            int rc;
            if (kind == 0) {
                rc = lf_queue_db_ack(db, "m", r);
                if (id > 0) {
                    M[id].exists = false;
                    T.acked++;
                }
            } else if (kind == 1) {
                uint64_t delay = rnd(2) ? 0 : rnd(1000);
                rc = lf_queue_db_nack(db, "m", r, delay);
                if (id > 0) {
                    M[id].visible_at = now + delay;
                    M[id].receipt[0] = '\0';
                    T.nacked++;
                }
            } else {
                uint64_t vis = rnd(3000);
                rc = lf_queue_db_extend(db, "m", r, vis);
                if (id > 0)
                    M[id].visible_at = now + vis;
            }
            assert_int_equal(rc, id > 0 ? 0 : -ENOENT);
        } else if (op < 77) { /* redrive */
            uint64_t moved, expect = 0;
            assert_int_equal(lf_queue_db_redrive(db, "m", 0, &moved), 0);
            for (int id = 1; id < MAXM; id++) {
                if (M[id].exists && M[id].dead) {
                    M[id].dead = false;
                    M[id].count = 0;
                    M[id].visible_at = now;
                    expect++;
                }
            }
            T.redriven += expect;
            assert_int_equal(moved, expect);
        } else if (op < 78) {
            lf_queue_db_close(db);
            assert_int_equal(lf_queue_db_open(path, &opt, &db), 0);
        } else if (op < 90) {
            now += rnd(1500);
        } else {
            compare_stats(db);
        }
    }
    compare_stats(db);
    char *report;
    assert_int_equal(lf_queue_db_check(db, &report), 0);
    assert_string_equal(report, "ok");
    lf_free(report);
    lf_queue_db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
