/* The JetStream queue backend against a real nats-server (JetStream on, file storage, a scratch
 * directory, a free loopback port): publish/receive/ack, a duplicate publish dropped by the server,
 * redelivery after the ack wait, extend past it, nack with a delay, dead letters with their reason
 * and their redrive, statistics, a message surviving SIGKILL of the server, check, and refused
 * credentials. Each test uses its own queue on one shared server, except those that need a server
 * of their own. Time passes only inside long polls, which end as soon as the awaited message comes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nats/nats.h>
#include <sodium.h>

#include "lf_error.h"
#include "lf_jetstream.h"
#include "lf_jsconsumer.h"
#include "lf_jsqueue.h"
#include "lf_test_nats.h"

typedef struct lf_test_nats_group fixture;

/* A test's own server (which it may kill), started (or restarted: lf_test_nats_start) and connected
 * with the default options. */
static lf_jetstream *start_own(struct lf_test_nats *n)
{
    assert_int_equal(lf_test_nats_start(n), 0);
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    lf_jetstream *js = NULL;
    assert_int_equal(lf_test_nats_connect(n, &o, 20000, &js), 0);
    return js;
}

static lf_jsqueue *open_queue(fixture *f, const char *name, uint64_t visibility_ms, uint32_t max_receives)
{
    lf_jsqueue_options o;
    lf_jsqueue_options_init(&o);
    o.queue = name;
    o.visibility_ms = visibility_ms;
    o.max_receives = max_receives;
    lf_jsqueue *q = NULL;
    lf_buf err = LF_BUF_INIT(4096);
    int rc = lf_jsqueue_open(f->js, &o, &q, &err);
    if (rc)
        fprintf(stderr, "open %s: %s\n", name, err.data ? err.data : lf_strerror(rc));
    lf_buf_free(&err);
    assert_int_equal(rc, 0);
    return q;
}

static void publish(lf_jsqueue *q, const char *sid, bool want_duplicate)
{
    bool dup = !want_duplicate;
    uint64_t seq = 0;
    assert_int_equal(lf_jsqueue_publish(q, sid, strlen(sid), sid, &dup, &seq, NULL), 0);
    assert_true(dup == want_duplicate);
    assert_true(seq > 0);
}

/* One message, long-polling up to wait_ms (which ends as soon as it is there). */
static lf_jsqueue_msg *receive_one(lf_jsqueue *q, uint64_t wait_ms)
{
    lf_jsqueue_msg *m = NULL;
    size_t n = 0;
    lf_buf err = LF_BUF_INIT(4096);
    int rc = lf_jsqueue_receive(q, 1, wait_ms, &m, &n, &err);
    if (rc)
        fprintf(stderr, "receive: %s\n", err.data ? err.data : lf_strerror(rc));
    lf_buf_free(&err);
    assert_int_equal(rc, 0);
    assert_true(n <= 1);
    return n ? m : NULL;
}

static void expect_nothing(lf_jsqueue *q, uint64_t wait_ms)
{
    lf_jsqueue_msg *m = receive_one(q, wait_ms);
    if (m)
        fprintf(stderr, "unexpected message %s (delivery %u)\n", (char *)m->body, m->receive_count);
    assert_null(m);
}

static lf_queue_statistics stats(lf_jsqueue *q)
{
    lf_queue_statistics s;
    assert_int_equal(lf_jsqueue_stats(q, &s, NULL), 0);
    return s;
}

static void publish_receive_ack(void **state)
{
    lf_jsqueue *q = open_queue(*state, "basic", 30000, 5);
    publish(q, "s-0001", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->body, "s-0001");
    assert_int_equal(m->len, 6);
    assert_string_equal(m->msg_id, "s-0001");
    assert_string_equal(m->session_id, "s-0001");
    assert_int_equal(m->receive_count, 1);
    assert_true(m->sent_ms > 0);
    assert_true(strncmp(m->receipt, "$JS.ACK.LF_Q_basic.", 19) == 0);
    assert_int_equal(stats(q).in_flight, 1);
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_queue_statistics s = stats(q);
    assert_int_equal(s.depth, 0);
    assert_int_equal(s.in_flight, 0);
    expect_nothing(q, 0);
    /* a receipt this queue did not hand out is refused before anything is sent */
    assert_int_equal(lf_jsqueue_ack(q, "$JS.API.STREAM.DELETE.LF_Q_basic", NULL), -EINVAL);
    assert_int_equal(lf_jsqueue_ack(q, "$JS.ACK.LF_Q_other.lf-parsers.1.1.1.1.0", NULL), -EINVAL);
    lf_jsqueue_close(q);
}

static void duplicate_publish_is_dropped(void **state)
{
    lf_jsqueue *q = open_queue(*state, "dedup", 30000, 5);
    publish(q, "s-dup", false);
    publish(q, "s-dup", true);
    publish(q, "s-other", false);
    lf_queue_statistics s = stats(q);
    assert_int_equal(s.depth, 2);
    assert_int_equal(s.sent, 2);
    /* also once the first copy was consumed: the window, not the message, remembers the id */
    for (int i = 0; i < 2; i++) {
        lf_jsqueue_msg *m = receive_one(q, 10000);
        assert_non_null(m);
        assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
        lf_jsqueue_msgs_free(m, 1);
    }
    publish(q, "s-dup", true);
    expect_nothing(q, 0);
    lf_jsqueue_close(q);
}

static void expired_visibility_redelivers(void **state)
{
    lf_jsqueue *q = open_queue(*state, "expiry", 1000, 5);
    publish(q, "s-exp", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    assert_int_equal(m->receive_count, 1);
    lf_jsqueue_msgs_free(m, 1);
    m = receive_one(q, 15000); /* comes back after the 1 s ack wait */
    assert_non_null(m);
    assert_string_equal(m->body, "s-exp");
    assert_int_equal(m->receive_count, 2);
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_jsqueue_close(q);
}

static void extend_keeps_it_invisible(void **state)
{
    lf_jsqueue *q = open_queue(*state, "extend", 1500, 5);
    publish(q, "s-ext", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    int64_t start = lf_test_nats_now_ms();
    /* twice the ack wait passes in polls that would end at once if it came back */
    while (lf_test_nats_now_ms() - start < 3000) {
        assert_int_equal(lf_jsqueue_extend(q, m->receipt, NULL), 0);
        expect_nothing(q, 500);
    }
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    expect_nothing(q, 2000);
    lf_jsqueue_close(q);
}

static void nack_with_delay(void **state)
{
    lf_jsqueue *q = open_queue(*state, "nack", 30000, 5);
    publish(q, "s-nack", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    int64_t start = lf_test_nats_now_ms();
    assert_int_equal(lf_jsqueue_nack(q, m->receipt, 1000, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    m = receive_one(q, 15000);
    assert_non_null(m);
    assert_true(lf_test_nats_now_ms() - start >= 900); /* not before its delay */
    assert_int_equal(m->receive_count, 2);
    /* without a delay it is back at once, well within the 30 s ack wait */
    assert_int_equal(lf_jsqueue_nack(q, m->receipt, 0, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    m = receive_one(q, 10000);
    assert_non_null(m);
    assert_int_equal(m->receive_count, 3);
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_jsqueue_close(q);
}

static void dead_letters_and_redrive(void **state)
{
    lf_jsqueue *q = open_queue(*state, "dead", 30000, 2);
    publish(q, "s-dead", false);
    for (uint32_t i = 1; i <= 2; i++) {
        lf_jsqueue_msg *m = receive_one(q, 10000);
        assert_non_null(m);
        assert_int_equal(m->receive_count, i);
        assert_int_equal(lf_jsqueue_nack(q, m->receipt, 0, NULL), 0);
        lf_jsqueue_msgs_free(m, 1);
    }
    /* the third delivery is moved to the dead letters instead of being returned; the poll ends
     * empty, the stream is empty once the dead letter is terminated */
    expect_nothing(q, 2000);
    lf_queue_statistics s = stats(q);
    assert_int_equal(s.dlq_depth, 1);
    assert_int_equal(s.depth, 0);
    assert_int_equal(s.in_flight, 0);

    lf_jsqueue_msg *d = NULL;
    size_t n = 0;
    assert_int_equal(lf_jsqueue_peek_dead(q, 10, &d, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].body, "s-dead");
    assert_string_equal(d[0].session_id, "s-dead");
    assert_string_equal(d[0].msg_id, "s-dead");
    assert_non_null(strstr(d[0].reason, "max_receives"));
    lf_jsqueue_msgs_free(d, n);

    uint64_t moved = 0;
    assert_int_equal(lf_jsqueue_redrive(q, 0, &moved, NULL), 0);
    assert_int_equal(moved, 1);
    assert_int_equal(stats(q).dlq_depth, 0);
    /* back with a fresh id (the original is still in the dedup window) and the session id kept */
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->body, "s-dead");
    assert_string_equal(m->session_id, "s-dead");
    assert_string_equal(m->msg_id, "s-dead.r1");
    assert_int_equal(m->receive_count, 1);

    /* a worker's own dead letter, done twice as after a crash between publish and terminate: the
     * repeat is deduplicated by the sequence-derived id */
    assert_int_equal(lf_jsqueue_dead_letter(q, m, "unreadable archive", NULL), 0);
    assert_int_equal(lf_jsqueue_dead_letter(q, m, "unreadable archive", NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    s = stats(q);
    assert_int_equal(s.dlq_depth, 1);
    assert_int_equal(s.depth + s.in_flight, 0);
    assert_int_equal(lf_jsqueue_peek_dead(q, 10, &d, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].reason, "unreadable archive");
    assert_string_equal(d[0].session_id, "s-dead");
    lf_jsqueue_msgs_free(d, n);
    lf_jsqueue_close(q);
}

/* Publishes body to queue q's subject with header Lf-Receiver = origin, as no lf_jsqueue would. */
static void publish_raw_origin(fixture *f, const char *q, const char *body, const char *origin)
{
    char subject[128];
    snprintf(subject, sizeof subject, "logferry.q.%s", q);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, body, (int)strlen(body)), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "Lf-Receiver", origin), NATS_OK);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_PublishMsg(&pa, lf_jetstream_ctx(f->js), m, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
}

/* The origin (the receiver storing the session): published as a header by a queue opened with it,
 * handed back by receive, kept by a dead letter and by its redrive; absent without it; a header that
 * is not a URL, or too long to keep whole, is dead-lettered at receive instead of returned. */
static void origin_round_trip(void **state)
{
    fixture *f = *state;
    lf_jsqueue_options o;
    lf_jsqueue_options_init(&o);
    o.queue = "origin";
    o.max_receives = 5;
    o.origin = "http://10.1.2.3:8440";
    lf_jsqueue *q = NULL;
    assert_int_equal(lf_jsqueue_open(f->js, &o, &q, NULL), 0);
    publish(q, "s-origin", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->origin, "http://10.1.2.3:8440");
    assert_int_equal(lf_jsqueue_dead_letter(q, m, "testing", NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_jsqueue_msg *d = NULL;
    size_t n = 0;
    assert_int_equal(lf_jsqueue_peek_dead(q, 10, &d, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].origin, "http://10.1.2.3:8440");
    lf_jsqueue_msgs_free(d, n);
    lf_jsqueue_close(q);

    /* the redrive is made by a process of another receiver (its own origin): the message still
     * names the one that stores it */
    o.origin = "https://other.example:8440";
    assert_int_equal(lf_jsqueue_open(f->js, &o, &q, NULL), 0);
    uint64_t moved = 0;
    assert_int_equal(lf_jsqueue_redrive(q, 0, &moved, NULL), 0);
    assert_int_equal(moved, 1);
    m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->body, "s-origin");
    assert_string_equal(m->session_id, "s-origin");
    assert_string_equal(m->origin, "http://10.1.2.3:8440");
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_jsqueue_close(q);

    o.origin = NULL;
    q = open_queue(f, "origin", 60000, 5);
    publish(q, "s-none", false);
    m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->origin, "");
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);

    char longest[LF_JSQUEUE_ORIGIN_MAX + 1];
    memset(longest, 'a', sizeof longest);
    memcpy(longest, "http://", 7);
    longest[LF_JSQUEUE_ORIGIN_MAX - 1] = '\0'; /* as long as can be kept */
    publish_raw_origin(f, "origin", "s-longest", longest);
    m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->origin, longest);
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);

    longest[LF_JSQUEUE_ORIGIN_MAX - 1] = 'a';
    longest[LF_JSQUEUE_ORIGIN_MAX] = '\0'; /* one more: refused, not cut */
    publish_raw_origin(f, "origin", "s-too-long", longest);
    publish_raw_origin(f, "origin", "s-not-url", "ftp://host/");
    publish_raw_origin(f, "origin", "s-space", "http://a b");
    for (int i = 0; i < 3; i++) /* one delivery per poll, each dead-lettered */
        expect_nothing(q, 2000);
    assert_int_equal(lf_jsqueue_peek_dead(q, 10, &d, &n, NULL), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(d[i].reason, "Lf-Receiver"));
        assert_string_equal(d[i].origin, "");
    }
    assert_string_equal(d[0].body, "s-too-long");
    lf_jsqueue_msgs_free(d, n);
    lf_jsqueue_close(q);

    o.origin = "recv-2:8440"; /* no scheme: a receiver with it must not start */
    assert_int_equal(lf_jsqueue_open(f->js, &o, &q, NULL), -EINVAL);
    assert_true(lf_jsqueue_origin_valid("https://recv-2.example:8440/"));
    assert_false(lf_jsqueue_origin_valid("http://"));
    assert_false(lf_jsqueue_origin_valid("http:///x"));
    assert_false(lf_jsqueue_origin_valid(""));
}

/* The parser's consumer: a tracked message stays with its worker past the ack wait (extended in the
 * background), ack removes it, nack hands it back, stop ends receiving. */
static void consumer_tracks_acks_and_stops(void **state)
{
    lf_jsqueue *q = open_queue(*state, "consumer", 1000, 5);
    lf_jsqueue *other = open_queue(*state, "consumer", 1000, 5); /* another parser */
    lf_jsconsumer *c = NULL;
    assert_int_equal(lf_jsconsumer_new(((fixture *)*state)->js, q, 1000, 5000, &c), 0);
    publish(other, "s-long", false);
    lf_jsqueue_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(lf_jsconsumer_receive(c, 1, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_jsconsumer_track(c, m->receipt), 0);
    int64_t start = lf_test_nats_now_ms();
    while (lf_test_nats_now_ms() - start < 3000) /* three ack waits, in polls that end if it came back */
        expect_nothing(other, 500);
    assert_false(lf_jsconsumer_lost(c, m->receipt));
    assert_int_equal(lf_jsconsumer_nack(c, m->receipt, 0), 0);
    lf_jsqueue_msgs_free(m, n);
    assert_int_equal(lf_jsconsumer_receive(c, 1, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m->receive_count, 2);
    assert_int_equal(lf_jsconsumer_ack(c, m->receipt), 0);
    lf_jsqueue_msgs_free(m, n);
    expect_nothing(other, 1500);
    lf_jsconsumer_stop(c);
    assert_int_equal(lf_jsconsumer_receive(c, 1, &m, &n), LF_ECLOSED);
    lf_jsconsumer_close(c); /* closes q */
    lf_jsqueue_close(other);
}

/* The extender publishes "+WPI" without waiting for each answer (one flush a round): the server
 * applies those too, so five hundred tracked messages all stay with their parser past three ack
 * waits; only an ack subject can be tracked, as the extender publishes to it. */
static void consumer_extends_many_without_replies(void **state)
{
    enum { N = 500 };
    lf_jsqueue *q = open_queue(*state, "many", 1000, 5);
    lf_jsqueue *other = open_queue(*state, "many", 1000, 5);
    lf_jsconsumer *c = NULL;
    assert_int_equal(lf_jsconsumer_new(((fixture *)*state)->js, q, 1000, 5000, &c), 0);
    assert_int_equal(lf_jsconsumer_track(c, "logferry.q.many"), -EINVAL);
    for (int i = 0; i < N; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "s-many-%d", i);
        publish(other, sid, false);
    }
    lf_jsqueue_msg *all[N];
    size_t got = 0;
    while (got < N) {
        lf_jsqueue_msg *m = NULL;
        size_t n = 0;
        assert_int_equal(lf_jsconsumer_receive(c, 1, &m, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lf_jsconsumer_track(c, m->receipt), 0);
        all[got++] = m;
    }
    int64_t start = lf_test_nats_now_ms();
    while (lf_test_nats_now_ms() - start < 3000)
        expect_nothing(other, 500);
    for (size_t i = 0; i < N; i++) {
        assert_false(lf_jsconsumer_lost(c, all[i]->receipt));
        assert_int_equal(all[i]->receive_count, 1);
        assert_int_equal(lf_jsconsumer_ack(c, all[i]->receipt), 0);
        lf_jsqueue_msgs_free(all[i], 1);
    }
    expect_nothing(other, 1500);
    lf_jsconsumer_stop(c);
    lf_jsconsumer_close(c);
    lf_jsqueue_close(other);
}

/* With NATS gone the extender sends nothing and counts a miss per round at once (not after a
 * request timeout per message), so the tracked messages are reported lost after two rounds, and
 * close does not wait for a round. */
static void consumer_closes_while_nats_is_away(void **state)
{
    (void)state;
    struct lf_test_nats n = {0};
    lf_jetstream *js = start_own(&n);
    fixture f = {.js = js};
    lf_jsqueue *q = open_queue(&f, "away", 1000, 5);
    lf_jsconsumer *c = NULL;
    assert_int_equal(lf_jsconsumer_new(js, q, 1000, 1000, &c), 0);
    enum { N = 3 };
    lf_jsqueue_msg *all[N];
    for (int i = 0; i < N; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "s-away-%d", i);
        publish(q, sid, false);
        size_t got = 0;
        assert_int_equal(lf_jsconsumer_receive(c, 1, &all[i], &got), 0);
        assert_int_equal(got, 1);
        assert_int_equal(lf_jsconsumer_track(c, all[i]->receipt), 0);
    }
    lf_test_nats_kill(&n);
    int64_t start = lf_test_nats_now_ms();
    while (lf_jsconsumer_connected(c) && lf_test_nats_now_ms() - start < 5000)
        usleep(10000);
    assert_false(lf_jsconsumer_connected(c));
    start = lf_test_nats_now_ms();
    while (!lf_jsconsumer_lost(c, all[N - 1]->receipt) && lf_test_nats_now_ms() - start < 3000)
        usleep(10000);
    assert_true(lf_jsconsumer_lost(c, all[N - 1]->receipt));
    for (int i = 0; i < N; i++)
        lf_jsqueue_msgs_free(all[i], 1);
    lf_jsconsumer_stop(c);
    start = lf_test_nats_now_ms();
    lf_jsconsumer_close(c);
    assert_true(lf_test_nats_now_ms() - start < 1000);
    lf_jetstream_close(js);
    lf_test_nats_stop(&n);
}

static void statistics(void **state)
{
    lf_jsqueue *q = open_queue(*state, "stats", 30000, 5);
    lf_queue_statistics s = stats(q);
    assert_true(s.exists);
    assert_int_equal(s.depth + s.in_flight + s.dlq_depth + s.oldest_age_ms, 0);
    publish(q, "s-a", false);
    publish(q, "s-b", false);
    publish(q, "s-c", false);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    s = stats(q);
    assert_int_equal(s.sent, 3);
    assert_int_equal(s.depth, 2);
    assert_int_equal(s.in_flight, 1);
    assert_int_equal(s.received, 1);
    assert_true(s.oldest_age_ms < 60000);
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    assert_int_equal(stats(q).depth, 2);

    lf_buf report = LF_BUF_INIT(4096);
    assert_int_equal(lf_jsqueue_check(q, &report), 0);
    assert_string_equal(report.data, "ok");
    lf_buf_free(&report);
    lf_jsqueue_close(q);

    /* a queue opened with other replicas than the stream has: a single server refuses the update */
    lf_jsqueue_options o;
    lf_jsqueue_options_init(&o);
    o.queue = "stats";
    o.replicas = 3;
    lf_buf err = LF_BUF_INIT(4096);
    fixture *f = *state;
    int rc = lf_jsqueue_open(f->js, &o, &q, &err);
    fprintf(stderr, "replicas 3 on one server: %s: %s\n", lf_strerror(rc), err.data ? err.data : "");
    assert_true(rc < 0);
    assert_non_null(err.data);
    lf_buf_free(&err);
    /* back to the configured one replica, check is clean again */
    q = open_queue(f, "stats", 30000, 5);
    lf_buf_init(&report, 4096);
    assert_int_equal(lf_jsqueue_check(q, &report), 0);
    assert_string_equal(report.data, "ok");
    lf_buf_free(&report);
    lf_jsqueue_close(q);
}

static void message_survives_server_kill(void **state)
{
    struct lf_test_nats n = {0};
    lf_jetstream *js = start_own(&n);
    fixture f = {.js = js};
    lf_jsqueue *q = open_queue(&f, "crash", 30000, 5);
    publish(q, "s-kept", false);
    lf_jsqueue_close(q);
    lf_jetstream_close(js);

    lf_test_nats_kill(&n); /* SIGKILL right after the PubAck */
    js = start_own(&n);
    f.js = js;
    q = open_queue(&f, "crash", 30000, 5);
    /* the server rebuilds its dedup window from the messages still stored (see lf_jsqueue.h) */
    publish(q, "s-kept", true);
    lf_jsqueue_msg *m = receive_one(q, 10000);
    assert_non_null(m);
    assert_string_equal(m->body, "s-kept");
    assert_int_equal(lf_jsqueue_ack(q, m->receipt, NULL), 0);
    lf_jsqueue_msgs_free(m, 1);
    lf_jsqueue_close(q);
    lf_jetstream_close(js);
    lf_test_nats_stop(&n);
}

static void wrong_password_is_refused(void **state)
{
    struct lf_test_nats n = {0};
    snprintf(n.extra[0], sizeof n.extra[0], "--user");
    snprintf(n.extra[1], sizeof n.extra[1], "ferry");
    snprintf(n.extra[2], sizeof n.extra[2], "--pass");
    snprintf(n.extra[3], sizeof n.extra[3], "right-secret-1");
    n.nextra = 4;
    assert_int_equal(lf_test_nats_start(&n), 0);
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    o.user = "ferry";
    o.password = "right-secret-1";
    lf_jetstream *js = NULL;
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    lf_jetstream_close(js);

    o.password = "wrong-secret-2";
    lf_buf err = LF_BUF_INIT(4096);
    assert_int_equal(lf_jetstream_connect(&o, &js, &err), LF_EAUTH);
    assert_null(js);
    assert_non_null(err.data);
    assert_null(strstr(err.data, "secret")); /* the credentials are never in the text */
    lf_buf_free(&err);
    o.user = NULL;
    o.password = NULL;
    assert_int_equal(lf_jetstream_connect(&o, &js, NULL), LF_EAUTH);
    lf_test_nats_stop(&n);
}

/* An nkey pair as the nk tool writes it: base32 of a prefix, the key and a CRC-16 (XMODEM, little
 * endian); "U..." the user's public key, "SU..." its seed. */
static void nkey_encode(const uint8_t *prefix, size_t np, const uint8_t key[32], char *out)
{
    uint8_t raw[36];
    memcpy(raw, prefix, np);
    memcpy(raw + np, key, 32);
    size_t n = np + 32;
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(raw[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    raw[n++] = (uint8_t)(crc & 0xff);
    raw[n++] = (uint8_t)(crc >> 8);
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[k++] = b32[(acc << (5 - bits)) & 31];
    out[k] = '\0';
}

static void nkey_is_accepted(void **state)
{
    assert_true(sodium_init() >= 0);
    uint8_t seed[32], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    const uint8_t user = 20 << 3, seed_prefix = 18 << 3;
    const uint8_t pub_prefix[1] = {user};
    const uint8_t seed_prefixes[2] = {(uint8_t)(seed_prefix | (user >> 5)), (uint8_t)((user & 31) << 3)};
    char pub[64], sd[64];
    nkey_encode(pub_prefix, 1, pk, pub);
    nkey_encode(seed_prefixes, 2, seed, sd);
    assert_int_equal(pub[0], 'U');
    assert_true(sd[0] == 'S' && sd[1] == 'U');

    struct lf_test_nats n = {0};
    char dir[] = "/tmp/lf-nats-nkey-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char conf[300], seedfile[300];
    snprintf(conf, sizeof conf, "%s/server.conf", dir);
    snprintf(seedfile, sizeof seedfile, "%s/user.nk", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "authorization { users = [ { nkey: %s } ] }\n", pub);
    fclose(f);
    f = fopen(seedfile, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", sd);
    fclose(f);
    snprintf(n.extra[0], sizeof n.extra[0], "-c");
    snprintf(n.extra[1], sizeof n.extra[1], "%s", conf);
    n.nextra = 2;
    assert_int_equal(lf_test_nats_start(&n), 0);

    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    o.nkey_public = pub;
    o.nkey_seed_file = seedfile;
    lf_jetstream *js = NULL;
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    lf_jetstream_close(js);
    /* the seed of another key does not sign for this one */
    randombytes_buf(seed, sizeof seed);
    nkey_encode(seed_prefixes, 2, seed, sd);
    f = fopen(seedfile, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", sd);
    fclose(f);
    assert_int_equal(lf_jetstream_connect(&o, &js, NULL), LF_EAUTH);
    lf_test_nats_stop(&n);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A CA, a certificate for 127.0.0.1 signed by it, and another CA that signed nothing. */
static int make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ( "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr && "
             "echo subjectAltName=IP:127.0.0.1 > san.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile san.ext -out server.pem ) 2>openssl.log",
             dir);
    /* openssl's progress goes to stderr; its status is what counts */
    return system(cmd) == 0 ? 0 : -1;
}

static void tls_with_the_right_ca_only(void **state)
{
    struct lf_test_nats n = {0};
    char dir[] = "/tmp/lf-nats-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(make_certs(dir), 0);
    snprintf(n.extra[0], sizeof n.extra[0], "--tls");
    snprintf(n.extra[1], sizeof n.extra[1], "--tlscert");
    snprintf(n.extra[2], sizeof n.extra[2], "%s/server.pem", dir);
    snprintf(n.extra[3], sizeof n.extra[3], "--tlskey");
    snprintf(n.extra[4], sizeof n.extra[4], "%s/server.key", dir);
    n.nextra = 5;
    assert_int_equal(lf_test_nats_start(&n), 0);
    char ca[300], other[300];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);

    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    o.ca_file = ca;
    lf_jetstream *js = NULL;
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    fixture f = {.js = js};
    lf_jsqueue *q = open_queue(&f, "tls", 30000, 5);
    publish(q, "s-tls", false);
    lf_jsqueue_close(q);
    lf_jetstream_close(js);

    o.ca_file = other;
    lf_buf err = LF_BUF_INIT(4096);
    int rc = lf_jetstream_connect(&o, &js, &err);
    fprintf(stderr, "another CA: %s\n", err.data ? err.data : "");
    assert_int_equal(rc, -EPROTO);
    assert_null(js);
    lf_buf_free(&err);
    /* without a CA file libnats still upgrades to the TLS the server requires, and then verifies
     * the certificate against nothing it trusts */
    o.ca_file = NULL;
    lf_buf_init(&err, 4096);
    rc = lf_jetstream_connect(&o, &js, &err);
    assert_int_equal(rc, -EPROTO);
    lf_buf_free(&err);
    lf_test_nats_stop(&n);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void bad_options(void **state)
{
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    lf_jetstream *js = NULL;
    assert_int_equal(lf_jetstream_connect(&o, &js, NULL), -EINVAL); /* no server */
    o.servers[0] = "nats://127.0.0.1:1";
    o.nservers = 1;
    o.connect_timeout_ms = 500;
    assert_int_equal(lf_jetstream_connect(&o, &js, NULL), -ECONNREFUSED);
    fixture *f = *state;
    lf_jsqueue_options qo;
    lf_jsqueue_options_init(&qo);
    lf_jsqueue *q = NULL;
    qo.queue = "a.b"; /* a dot would split the subject */
    assert_int_equal(lf_jsqueue_open(f->js, &qo, &q, NULL), -EINVAL);
    qo.queue = "ok";
    qo.replicas = 0;
    assert_int_equal(lf_jsqueue_open(f->js, &qo, &q, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publish_receive_ack),
        cmocka_unit_test(duplicate_publish_is_dropped),
        cmocka_unit_test(expired_visibility_redelivers),
        cmocka_unit_test(extend_keeps_it_invisible),
        cmocka_unit_test(nack_with_delay),
        cmocka_unit_test(dead_letters_and_redrive),
        cmocka_unit_test(origin_round_trip),
        cmocka_unit_test(consumer_tracks_acks_and_stops),
        cmocka_unit_test(consumer_extends_many_without_replies),
        cmocka_unit_test(consumer_closes_while_nats_is_away),
        cmocka_unit_test(statistics),
        cmocka_unit_test(message_survives_server_kill),
        cmocka_unit_test(wrong_password_is_refused),
        cmocka_unit_test(nkey_is_accepted),
        cmocka_unit_test(tls_with_the_right_ca_only),
        cmocka_unit_test(bad_options),
    };
    int failed = cmocka_run_group_tests(tests, lf_test_nats_group_setup, lf_test_nats_group_teardown);
    lf_jetstream_shutdown(); /* libnats' threads and process-wide state */
    return failed;
}
