/* Queue semantics through the synchronous API with a controlled clock: send, receive, visibility
 * timeouts, stale receipts, dedup window, delays, nack, extend, dead letters, redrive, retention,
 * statistics, persistence across reopen, clock steps, schema versioning. */
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
#include <sqlite3.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue.h"

static uint64_t fake_now = 1700000000000ull;
static uint64_t fake_clock(void *arg)
{
    return fake_now;
}

struct fx {
    char dir[64];
    char path[128];
    lf_queue_options opt;
    lf_queue_db *db;
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

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/lfq-unit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    lf_queue_options_init(&f->opt);
    f->opt.clock_ms = fake_clock;
    f->opt.max_receives = 3;
    fake_now = 1700000000000ull;
    assert_int_equal(lf_queue_db_open(f->path, &f->opt, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lf_queue_db_close(f->db);
    rm_store(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    lf_queue_db_close(f->db);
    f->db = NULL;
    assert_int_equal(lf_queue_db_open(f->path, &f->opt, &f->db), 0);
}

static uint64_t send_str(struct fx *f, const char *q, const char *body)
{
    uint64_t id = 0;
    bool dup = true;
    assert_int_equal(lf_queue_db_send(f->db, q, body, strlen(body), NULL, 0, &id, &dup), 0);
    assert_false(dup);
    assert_true(id > 0);
    return id;
}

static lf_queue_statistics stats(struct fx *f, const char *q)
{
    lf_queue_statistics s;
    assert_int_equal(lf_queue_db_stats(f->db, q, &s), 0);
    return s;
}

static void send_receive_ack(void **state)
{
    struct fx *f = *state;
    uint64_t a = send_str(f, "jobs", "alpha");
    uint64_t b = send_str(f, "jobs", "beta");
    uint64_t c = send_str(f, "jobs", "gamma");
    assert_true(a < b && b < c);
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "jobs", 2, 30000, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].id, a);
    assert_int_equal(m[1].id, b);
    assert_string_equal(m[0].body, "alpha");
    assert_int_equal(m[0].len, 5);
    assert_int_equal(m[0].receive_count, 1);
    assert_int_equal(m[0].sent_ms, fake_now);
    assert_int_equal(m[0].visible_at_ms, fake_now + 30000);
    assert_true(strlen(m[0].receipt) > 10);
    assert_string_not_equal(m[0].receipt, m[1].receipt);
    lf_queue_statistics s = stats(f, "jobs");
    assert_true(s.exists);
    assert_int_equal(s.depth, 1);
    assert_int_equal(s.in_flight, 2);
    assert_int_equal(s.delayed, 0);
    assert_int_equal(s.sent, 3);
    assert_int_equal(s.received, 2);
    assert_int_equal(lf_queue_db_ack(f->db, "jobs", m[0].receipt), 0);
    assert_int_equal(lf_queue_db_ack(f->db, "jobs", m[0].receipt), -ENOENT);
    assert_int_equal(lf_queue_db_ack(f->db, "jobs", "garbage"), -EINVAL);
    assert_int_equal(lf_queue_db_ack(f->db, "jobs", "99.1.0000000000000000"), -ENOENT);
    /* a receipt only works on its own queue */
    send_str(f, "other", "x");
    assert_int_equal(lf_queue_db_ack(f->db, "other", m[1].receipt), -ENOENT);
    assert_int_equal(lf_queue_db_ack(f->db, "jobs", m[1].receipt), 0);
    lf_queue_msgs_free(m, n);
    s = stats(f, "jobs");
    assert_int_equal(s.acked, 2);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.depth, 1);
    fake_now += 5000;
    s = stats(f, "jobs");
    assert_int_equal(s.oldest_age_ms, 5000);
    /* the other queue was untouched */
    assert_int_equal(lf_queue_db_receive(f->db, "other", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].body, "x");
    lf_queue_msgs_free(m, n);
    /* unknown queue: nothing, not an error */
    assert_int_equal(lf_queue_db_receive(f->db, "nobody", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 0);
    assert_null(m);
    s = stats(f, "nobody");
    assert_false(s.exists);
}

static void visibility_timeout_and_stale_receipts(void **state)
{
    struct fx *f = *state;
    uint64_t id = send_str(f, "q", "body");
    lf_queue_msg *m1, *m2;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m1, &n), 0);
    assert_int_equal(n, 1);
    fake_now += 999;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m2, &n), 0);
    assert_int_equal(n, 0);
    fake_now += 1;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m2, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m2[0].id, id);
    assert_int_equal(m2[0].receive_count, 2);
    assert_string_not_equal(m1[0].receipt, m2[0].receipt);
    /* the first delivery's receipt can neither ack, extend nor nack the redelivered message */
    assert_int_equal(lf_queue_db_ack(f->db, "q", m1[0].receipt), -ENOENT);
    assert_int_equal(lf_queue_db_extend(f->db, "q", m1[0].receipt, 5000), -ENOENT);
    assert_int_equal(lf_queue_db_nack(f->db, "q", m1[0].receipt, 0), -ENOENT);
    lf_queue_statistics s = stats(f, "q");
    assert_int_equal(s.expired_redeliveries, 1);
    assert_int_equal(s.received, 2);
    assert_int_equal(lf_queue_db_ack(f->db, "q", m2[0].receipt), 0);
    lf_queue_msgs_free(m1, 1);
    lf_queue_msgs_free(m2, 1);
    s = stats(f, "q");
    assert_int_equal(s.depth + s.in_flight + s.delayed, 0);
}

static void ack_after_expiry_without_redelivery(void **state)
{
    struct fx *f = *state;
    send_str(f, "q", "late");
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 1, 100, &m, &n), 0);
    fake_now += 1000;
    /* nobody received it again: the receipt is still the latest one (as SQS) */
    assert_int_equal(lf_queue_db_ack(f->db, "q", m[0].receipt), 0);
    lf_queue_msgs_free(m, n);
}

static void dedup_window(void **state)
{
    struct fx *f = *state;
    f->opt.dedup_window_ms = 60000;
    reopen(f);
    uint64_t id1, id2, id3;
    bool dup;
    assert_int_equal(lf_queue_db_send(f->db, "q", "a", 1, "sess-1", 0, &id1, &dup), 0);
    assert_false(dup);
    fake_now += 59999;
    assert_int_equal(lf_queue_db_send(f->db, "q", "b", 1, "sess-1", 0, &id2, &dup), 0);
    assert_true(dup);
    assert_int_equal(id2, id1);
    /* the same id on another queue is another message */
    assert_int_equal(lf_queue_db_send(f->db, "q2", "c", 1, "sess-1", 0, &id3, &dup), 0);
    assert_false(dup);
    /* a duplicate of an acked message is still a duplicate within the window */
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 1, 1000, &m, &n), 0);
    assert_int_equal(lf_queue_db_ack(f->db, "q", m[0].receipt), 0);
    lf_queue_msgs_free(m, n);
    assert_int_equal(lf_queue_db_send(f->db, "q", "b", 1, "sess-1", 0, &id2, &dup), 0);
    assert_true(dup);
    lf_queue_statistics s = stats(f, "q");
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.depth, 0);
    fake_now += 2;
    assert_int_equal(lf_queue_db_send(f->db, "q", "d", 1, "sess-1", 0, &id2, &dup), 0);
    assert_false(dup);
    assert_true(id2 > id1);
    /* dedup ids survive a restart */
    reopen(f);
    assert_int_equal(lf_queue_db_send(f->db, "q", "e", 1, "sess-1", 0, &id3, &dup), 0);
    assert_true(dup);
    assert_int_equal(id3, id2);
    /* bad dedup ids */
    char longid[LF_QUEUE_DEDUP_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(lf_queue_db_send(f->db, "q", "e", 1, longid, 0, &id3, &dup), -EINVAL);
    assert_int_equal(lf_queue_db_send(f->db, "q", "e", 1, "", 0, &id3, &dup), -EINVAL);
}

static void delayed_send_and_nack(void **state)
{
    struct fx *f = *state;
    uint64_t id;
    assert_int_equal(lf_queue_db_send(f->db, "q", "later", 5, NULL, 5000, &id, NULL), 0);
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 0);
    lf_queue_statistics s = stats(f, "q");
    assert_int_equal(s.delayed, 1);
    assert_int_equal(s.depth, 0);
    assert_int_equal(lf_queue_db_send(f->db, "q", "x", 1, NULL, LF_QUEUE_DELAY_MAX + 1, &id, NULL),
                     -EINVAL);
    fake_now += 5000;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_queue_db_nack(f->db, "q", m[0].receipt, 2000), 0);
    s = stats(f, "q");
    assert_int_equal(s.delayed, 1);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.nacked, 1);
    /* a nacked delivery's receipt is spent */
    assert_int_equal(lf_queue_db_ack(f->db, "q", m[0].receipt), -ENOENT);
    lf_queue_msgs_free(m, n);
    fake_now += 1999;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 0);
    fake_now += 1;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].receive_count, 2);
    /* nack without delay: visible at once */
    assert_int_equal(lf_queue_db_nack(f->db, "q", m[0].receipt, 0), 0);
    lf_queue_msgs_free(m, n);
    assert_int_equal(lf_queue_db_receive(f->db, "q", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].receive_count, 3);
    lf_queue_msgs_free(m, n);
}

static void extend_visibility(void **state)
{
    struct fx *f = *state;
    send_str(f, "q", "long job");
    lf_queue_msg *m, *m2;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 1, 1000, &m, &n), 0);
    fake_now += 500;
    assert_int_equal(lf_queue_db_extend(f->db, "q", m[0].receipt, 5000), 0);
    fake_now += 1000;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 1, 1000, &m2, &n), 0);
    assert_int_equal(n, 0);
    fake_now += 4000;
    assert_int_equal(lf_queue_db_receive(f->db, "q", 1, 1000, &m2, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_queue_db_extend(f->db, "q", m[0].receipt, 5000), -ENOENT);
    assert_int_equal(lf_queue_db_extend(f->db, "q", m2[0].receipt, LF_QUEUE_VISIBILITY_MAX + 1),
                     -EINVAL);
    lf_queue_msgs_free(m, 1);
    lf_queue_msgs_free(m2, 1);
}

static void dead_letters_and_redrive(void **state)
{
    struct fx *f = *state; /* max_receives = 3 */
    uint64_t id = send_str(f, "work", "poison");
    lf_queue_msg *m;
    size_t n;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(lf_queue_db_receive(f->db, "work", 1, 1000, &m, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(m[0].id, id);
        assert_int_equal(m[0].receive_count, i);
        lf_queue_msgs_free(m, n);
        fake_now += 1000;
    }
    /* the fourth delivery would pass max_receives: it moves to work.dlq, the next one comes */
    uint64_t ok = send_str(f, "work", "fine");
    assert_int_equal(lf_queue_db_receive(f->db, "work", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].id, ok);
    assert_int_equal(lf_queue_db_ack(f->db, "work", m[0].receipt), 0);
    lf_queue_msgs_free(m, n);
    lf_queue_statistics s = stats(f, "work");
    assert_int_equal(s.dead_lettered, 1);
    assert_int_equal(s.dlq_depth, 1);
    assert_int_equal(s.depth + s.in_flight + s.delayed, 0);
    assert_int_equal(lf_queue_db_peek(f->db, "work.dlq", 10, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].id, id);
    assert_string_equal(m[0].body, "poison");
    assert_int_equal(m[0].receive_count, 3);
    lf_queue_msgs_free(m, n);
    char **names;
    size_t nn;
    assert_int_equal(lf_queue_db_list(f->db, &names, &nn), 0);
    assert_int_equal(nn, 2);
    assert_string_equal(names[0], "work");
    assert_string_equal(names[1], "work.dlq");
    lf_queue_names_free(names, nn);
    /* redrive back with a fresh receive count */
    uint64_t moved;
    assert_int_equal(lf_queue_db_redrive(f->db, "work.dlq", 0, &moved), -EINVAL);
    assert_int_equal(lf_queue_db_redrive(f->db, "work", 0, &moved), 0);
    assert_int_equal(moved, 1);
    s = stats(f, "work");
    assert_int_equal(s.redriven, 1);
    assert_int_equal(s.dlq_depth, 0);
    assert_int_equal(s.depth, 1);
    assert_int_equal(lf_queue_db_receive(f->db, "work", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].id, id);
    assert_int_equal(m[0].receive_count, 1);
    lf_queue_msgs_free(m, n);
    assert_int_equal(lf_queue_db_redrive(f->db, "work", 0, &moved), 0);
    assert_int_equal(moved, 0);
    char *report;
    assert_int_equal(lf_queue_db_check(f->db, &report), 0);
    assert_string_equal(report, "ok");
    lf_free(report);
}

static void dead_letter_n(struct fx *f, const char *q, int count)
{
    for (int k = 0; k < count; k++)
        send_str(f, q, "dead");
    lf_queue_msg *m;
    size_t n;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lf_queue_db_receive(f->db, q, 1000, 100, &m, &n), 0);
        assert_int_equal(n, (size_t)count);
        lf_queue_msgs_free(m, n);
        fake_now += 100;
    }
    assert_int_equal(lf_queue_db_receive(f->db, q, 1000, 100, &m, &n), 0);
    assert_int_equal(n, 0);
}

static void redrive_partial(void **state)
{
    struct fx *f = *state;
    dead_letter_n(f, "r", 5);
    uint64_t moved;
    assert_int_equal(lf_queue_db_redrive(f->db, "r", 2, &moved), 0);
    assert_int_equal(moved, 2);
    lf_queue_statistics s = stats(f, "r");
    assert_int_equal(s.dlq_depth, 3);
    assert_int_equal(s.depth, 2);
}

static void dead_letter_retention(void **state)
{
    struct fx *f = *state;
    f->opt.dlq_max_count = 3;
    f->opt.dlq_max_age_ms = 3600 * 1000;
    reopen(f);
    dead_letter_n(f, "ret", 2);
    fake_now += 60000;
    dead_letter_n(f, "ret", 3);
    /* maintenance runs with a write at most every 10 s */
    fake_now += 11000;
    send_str(f, "ret-other", "tick");
    lf_queue_statistics s = stats(f, "ret");
    assert_int_equal(s.dlq_depth, 3);
    assert_int_equal(s.dlq_purged, 2);
    /* the oldest went: the three newest remain */
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_peek(f->db, "ret.dlq", 10, &m, &n), 0);
    assert_int_equal(n, 3);
    assert_true(m[0].id > 2);
    lf_queue_msgs_free(m, n);
    /* age limit */
    fake_now += 3600 * 1000;
    send_str(f, "ret-other", "tick");
    s = stats(f, "ret");
    assert_int_equal(s.dlq_depth, 0);
    assert_int_equal(s.dlq_purged, 5);
}

static void limits_and_arguments(void **state)
{
    struct fx *f = *state;
    f->opt.max_body = 1000;
    reopen(f);
    char big[1001];
    memset(big, 'b', sizeof big);
    uint64_t id;
    assert_int_equal(lf_queue_db_send(f->db, "q", big, 1001, NULL, 0, &id, NULL), LF_ELIMIT);
    assert_int_equal(lf_queue_db_send(f->db, "q", big, 1000, NULL, 0, &id, NULL), 0);
    assert_int_equal(lf_queue_db_send(f->db, "bad name", "x", 1, NULL, 0, &id, NULL), -EINVAL);
    assert_int_equal(lf_queue_db_send(f->db, "", "x", 1, NULL, 0, &id, NULL), -EINVAL);
    assert_int_equal(lf_queue_db_send(f->db, "q/../x", "x", 1, NULL, 0, &id, NULL), -EINVAL);
    char longname[LF_QUEUE_NAME_MAX + 10];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(lf_queue_name_valid(longname));
    longname[LF_QUEUE_NAME_MAX] = '\0';
    assert_true(lf_queue_name_valid(longname));
    char dlqname[LF_QUEUE_NAME_MAX + 16];
    snprintf(dlqname, sizeof dlqname, "%s.dlq", longname);
    assert_true(lf_queue_name_valid(dlqname));
    /* dead-letter queues are filled by dead-lettering only */
    assert_int_equal(lf_queue_db_send(f->db, "q.dlq", "x", 1, NULL, 0, &id, NULL), -EINVAL);
    /* empty and binary bodies round-trip */
    assert_int_equal(lf_queue_db_send(f->db, "bin", "", 0, NULL, 0, &id, NULL), 0);
    const char bin[] = {0, 1, 2, (char)0xff, 0, 'z'};
    assert_int_equal(lf_queue_db_send(f->db, "bin", bin, sizeof bin, NULL, 0, &id, NULL), 0);
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "bin", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].len, 0);
    assert_int_equal(m[1].len, sizeof bin);
    assert_memory_equal(m[1].body, bin, sizeof bin);
    lf_queue_msgs_free(m, n);
    assert_int_equal(lf_queue_db_receive(f->db, "bin", 0, 1000, &m, &n), -EINVAL);
    assert_int_equal(lf_queue_db_receive(f->db, "bin", LF_QUEUE_RECEIVE_MAX + 1, 1000, &m, &n),
                     -EINVAL);
    assert_int_equal(lf_queue_db_receive(f->db, "bin", 1, 0, &m, &n), -EINVAL);
}

static void persistence_across_reopen(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 50; i++) {
        char b[32];
        snprintf(b, sizeof b, "msg-%d", i);
        send_str(f, "p", b);
    }
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "p", 10, 60000, &m, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(lf_queue_db_ack(f->db, "p", m[0].receipt), 0);
    char receipt[LF_QUEUE_RECEIPT_MAX];
    strcpy(receipt, m[1].receipt);
    lf_queue_msgs_free(m, n);
    reopen(f);
    lf_queue_statistics s = stats(f, "p");
    assert_int_equal(s.sent, 50);
    assert_int_equal(s.acked, 1);
    assert_int_equal(s.in_flight, 9);
    assert_int_equal(s.depth, 40);
    /* a receipt from before the restart still works */
    assert_int_equal(lf_queue_db_ack(f->db, "p", receipt), 0);
    /* in-flight messages come back after their timeout */
    fake_now += 60000;
    assert_int_equal(lf_queue_db_receive(f->db, "p", 1000, 1000, &m, &n), 0);
    assert_int_equal(n, 48);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(m[i].body, "msg-2") == 0;
    assert_true(found);
    lf_queue_msgs_free(m, n);
}

static void clock_steps_back(void **state)
{
    struct fx *f = *state;
    send_str(f, "c", "first");
    lf_queue_msg *m;
    size_t n;
    assert_int_equal(lf_queue_db_receive(f->db, "c", 1, 1000, &m, &n), 0);
    lf_queue_msgs_free(m, n);
    uint64_t before = fake_now;
    fake_now -= 3600 * 1000; /* the wall clock steps back an hour */
    send_str(f, "c", "second");
    assert_int_equal(lf_queue_db_peek(f->db, "c", 10, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_true(m[1].sent_ms >= m[0].sent_ms);
    assert_true(m[1].sent_ms >= before);
    lf_queue_msgs_free(m, n);
    /* also across a restart: the store clock was persisted */
    reopen(f);
    send_str(f, "c", "third");
    assert_int_equal(lf_queue_db_peek(f->db, "c", 10, &m, &n), 0);
    assert_int_equal(n, 3);
    assert_true(m[2].sent_ms >= before);
    lf_queue_msgs_free(m, n);
    /* and the in-flight message still comes back after about its timeout (monotonic time) */
    usleep(1100 * 1000);
    assert_int_equal(lf_queue_db_receive(f->db, "c", 10, 1000, &m, &n), 0);
    assert_int_equal(n, 3);
    lf_queue_msgs_free(m, n);
}

static void schema_versions_and_foreign_files(void **state)
{
    struct fx *f = *state;
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), LF_QUEUE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    lf_queue_db_close(f->db);
    f->db = NULL;
    /* a store from a newer version is refused, not misread */
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(lf_queue_db_open(f->path, &f->opt, &f->db), LF_EFORMAT);
    /* another application's database is refused */
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(other, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    lf_queue_db *db2 = NULL;
    assert_int_equal(lf_queue_db_open(other, &f->opt, &db2), LF_EFORMAT);
    rm_store(other);
    /* a directory that does not exist */
    assert_int_equal(lf_queue_db_open("/nonexistent-dir/q.db", &f->opt, &db2), -ENOENT);
    rm_store(f->path);
    assert_int_equal(lf_queue_db_open(f->path, &f->opt, &f->db), 0);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(send_receive_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(visibility_timeout_and_stale_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(ack_after_expiry_without_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(dedup_window, setup, teardown),
        cmocka_unit_test_setup_teardown(delayed_send_and_nack, setup, teardown),
        cmocka_unit_test_setup_teardown(extend_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_letters_and_redrive, setup, teardown),
        cmocka_unit_test_setup_teardown(redrive_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_letter_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_and_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(persistence_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_steps_back, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_versions_and_foreign_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
