/* The JetStream key-value wrapper (lf_jskv.h) against a real nats-server: a bucket made when missing
 * and bound when there, get/put, create-only (-EEXIST), update against a revision, delete, the
 * sorted listing, refused keys, and a mirror that follows puts and deletes from another connection,
 * keeps its copy while the server is down and reads the bucket afresh once it is back (a delete made
 * meanwhile is not missed), and a write that fails while the server is down is an error, not a
 * refusal. Waits poll for the awaited generation, bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lf_error.h"
#include "lf_jetstream.h"
#include "lf_jskv.h"
#include "lf_test_nats.h"

typedef struct lf_test_nats_group fixture;

static lf_jskv *open_bucket(lf_jetstream *js, const char *name)
{
    lf_jskv *kv = NULL;
    lf_buf err = LF_BUF_INIT(4096);
    int rc = lf_jskv_open(js, name, 1, &kv, &err);
    if (rc)
        fprintf(stderr, "open %s: %s\n", name, lf_buf_cstr(&err));
    lf_buf_free(&err);
    assert_int_equal(rc, 0);
    return kv;
}

static void assert_value(lf_jskv *kv, const char *key, const char *want)
{
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    assert_int_equal(lf_jskv_get(kv, key, &v, NULL, NULL), 0);
    assert_string_equal(lf_buf_cstr(&v), want);
    lf_buf_free(&v);
}

static void put_get_create_update_delete(void **state)
{
    fixture *f = *state;
    lf_jskv *kv = open_bucket(f->js, "T_BASIC");
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    assert_int_equal(lf_jskv_get(kv, "a", &v, NULL, NULL), -ENOENT);
    uint64_t r1 = 0, r2 = 0, r3 = 0;
    assert_int_equal(lf_jskv_put(kv, "a", "one", 3, &r1, NULL), 0);
    assert_value(kv, "a", "one");
    assert_int_equal(lf_jskv_create(kv, "a", "two", 3, NULL, NULL), -EEXIST);
    assert_value(kv, "a", "one"); /* the refused create changed nothing */
    assert_int_equal(lf_jskv_create(kv, "b.c", "bc", 2, &r2, NULL), 0);
    assert_true(r2 > r1);
    assert_int_equal(lf_jskv_update(kv, "a", "three", 5, r1, &r3, NULL), 0);
    assert_int_equal(lf_jskv_update(kv, "a", "four", 4, r1, NULL, NULL), -EEXIST); /* r1 is stale */
    uint64_t got = 0;
    assert_int_equal(lf_jskv_get(kv, "a", &v, &got, NULL), 0);
    assert_string_equal(lf_buf_cstr(&v), "three");
    assert_int_equal(got, r3);
    assert_int_equal(lf_jskv_delete(kv, "a", NULL), 0);
    assert_int_equal(lf_jskv_get(kv, "a", &v, NULL, NULL), -ENOENT);
    assert_int_equal(lf_jskv_delete(kv, "never", NULL), 0);
    /* a deleted key may be created again (the delete marker is not a value) */
    assert_int_equal(lf_jskv_create(kv, "a", "five", 4, NULL, NULL), 0);
    assert_value(kv, "a", "five");
    lf_buf_free(&v);
    lf_jskv_close(kv);

    /* a second handle binds to the same bucket */
    kv = open_bucket(f->js, "T_BASIC");
    assert_value(kv, "b.c", "bc");
    lf_jskv_close(kv);
}

static int collect(void *arg, const char *key, const void *value, size_t len)
{
    lf_buf *b = arg;
    return lf_buf_appendf(b, "%s=%.*s;", key, (int)len, (const char *)value);
}

static void each_lists_live_keys_in_order(void **state)
{
    fixture *f = *state;
    lf_jskv *kv = open_bucket(f->js, "T_EACH");
    lf_buf out = LF_BUF_INIT(4096);
    assert_int_equal(lf_jskv_each(kv, collect, &out, NULL), 0);
    assert_int_equal(out.len, 0); /* an empty bucket */
    assert_int_equal(lf_jskv_put(kv, "zeta", "z", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_put(kv, "alpha", "a", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_put(kv, "mid", "m", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_put(kv, "alpha", "A", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_delete(kv, "mid", NULL), 0);
    assert_int_equal(lf_jskv_each(kv, collect, &out, NULL), 0);
    assert_string_equal(lf_buf_cstr(&out), "alpha=A;zeta=z;");
    lf_buf_free(&out);
    lf_jskv_close(kv);
}

static void bad_keys_and_names(void **state)
{
    fixture *f = *state;
    assert_false(lf_jskv_key_valid(""));
    assert_false(lf_jskv_key_valid(".a"));
    assert_false(lf_jskv_key_valid("a."));
    assert_false(lf_jskv_key_valid("a..b"));
    assert_false(lf_jskv_key_valid("a b"));
    assert_false(lf_jskv_key_valid("a*"));
    assert_true(lf_jskv_key_valid("site-1.example_2"));
    assert_true(lf_jskv_key_valid("0123456789abcdef0123456789abcdef"));
    lf_jskv *kv = NULL;
    assert_int_equal(lf_jskv_open(f->js, "bad.name", 1, &kv, NULL), -EINVAL);
    assert_int_equal(lf_jskv_open(f->js, "OK", 0, &kv, NULL), -EINVAL);
    kv = open_bucket(f->js, "T_BAD");
    assert_int_equal(lf_jskv_put(kv, "a b", "x", 1, NULL, NULL), -EINVAL);
    assert_int_equal(lf_jskv_create(kv, "*", "x", 1, NULL, NULL), -EINVAL);
    char big[LF_JSKV_VALUE_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(lf_jskv_put(kv, "big", big, sizeof big, NULL, NULL), LF_ELIMIT);
    lf_jskv_close(kv);
}

static int lookup_fn(void *arg, const char *key, const void *value, size_t len)
{
    const char **want = arg; /* want[0] key in, want[1] value out */
    if (strcmp(key, want[0]) == 0 && len < 64)
        want[1] = value;
    return 0;
}

/* The mirror's value of key ("" when absent) once its generation passes after. */
static const char *mirror_value(lf_jskv_mirror *m, const char *key, char *out, size_t size)
{
    const char *want[2] = {key, NULL};
    assert_int_equal(lf_jskv_mirror_each(m, NULL, lookup_fn, want), 0);
    snprintf(out, size, "%s", want[1] ? want[1] : "");
    return out;
}

/* Polls until the mirror shows key = value ("" absent), for up to timeout_ms. */
static void wait_mirror(lf_jskv_mirror *m, const char *key, const char *value, int64_t timeout_ms)
{
    int64_t deadline = lf_test_nats_now_ms() + timeout_ms;
    char got[64];
    while (strcmp(mirror_value(m, key, got, sizeof got), value) != 0) {
        if (lf_test_nats_now_ms() > deadline)
            fail_msg("mirror: %s is \"%s\", expected \"%s\"", key, got, value);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void mirror_follows_updates(void **state)
{
    fixture *f = *state;
    lf_jskv *writer = open_bucket(f->js, "T_MIRROR");
    assert_int_equal(lf_jskv_put(writer, "before", "1", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_put(writer, "gone", "x", 1, NULL, NULL), 0);
    assert_int_equal(lf_jskv_delete(writer, "gone", NULL), 0);

    /* the mirror on a connection of its own, as another receiver's would be */
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    lf_jetstream *js2 = NULL;
    assert_int_equal(lf_test_nats_connect(&f->server, &o, 20000, &js2), 0);
    lf_jskv *kv = open_bucket(js2, "T_MIRROR");
    lf_jskv_mirror *m = NULL;
    lf_buf err = LF_BUF_INIT(1024);
    assert_int_equal(lf_jskv_mirror_start(kv, 5000, &m, &err), 0);
    char got[64];
    /* the initial values are in when start returns */
    assert_string_equal(mirror_value(m, "before", got, sizeof got), "1");
    assert_string_equal(mirror_value(m, "gone", got, sizeof got), "");
    uint64_t g0 = lf_jskv_mirror_generation(m);
    assert_true(g0 >= 1);

    assert_int_equal(lf_jskv_put(writer, "after", "2", 1, NULL, NULL), 0);
    wait_mirror(m, "after", "2", 5000);
    assert_true(lf_jskv_mirror_generation(m) > g0);
    assert_int_equal(lf_jskv_delete(writer, "before", NULL), 0);
    wait_mirror(m, "before", "", 5000);
    lf_jskv_mirror_stop(m);
    lf_jskv_close(kv);
    lf_jetstream_close(js2);
    lf_buf_free(&err);
    lf_jskv_close(writer);
}

static void mirror_start_fails_without_bucket_values(void **state)
{
    (void)state;
    /* a server of its own, killed under an open bucket: the mirror cannot read it and says so */
    struct lf_test_nats n = {0};
    assert_int_equal(lf_test_nats_start(&n), 0);
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    o.request_timeout_ms = 500;
    lf_jetstream *js = NULL;
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    lf_jskv *kv = open_bucket(js, "T_DOWN");
    assert_int_equal(lf_jskv_put(kv, "k", "v", 1, NULL, NULL), 0);
    lf_test_nats_kill(&n);
    /* a failed write is an error, never taken for "the key is there" */
    int crc = lf_jskv_create(kv, "k", "w", 1, NULL, NULL);
    assert_true(crc < 0 && crc != -EEXIST);
    crc = lf_jskv_create(kv, "new", "w", 1, NULL, NULL);
    assert_true(crc < 0 && crc != -EEXIST);
    lf_jskv_mirror *m = NULL;
    lf_buf err = LF_BUF_INIT(1024);
    int rc = lf_jskv_mirror_start(kv, 1000, &m, &err);
    assert_int_not_equal(rc, 0);
    assert_null(m);
    assert_true(err.len > 0);
    lf_buf_free(&err);
    lf_jskv_close(kv);
    lf_jetstream_close(js);
    lf_test_nats_stop(&n);
}

static void mirror_keeps_its_copy_across_an_outage(void **state)
{
    (void)state;
    struct lf_test_nats n = {0};
    assert_int_equal(lf_test_nats_start(&n), 0);
    lf_jetstream_options o;
    lf_jetstream_options_init(&o);
    o.request_timeout_ms = 1000;
    lf_jetstream *js = NULL, *js2 = NULL;
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    lf_jetstream_options o2;
    lf_jetstream_options_init(&o2);
    assert_int_equal(lf_test_nats_connect(&n, &o2, 20000, &js2), 0);
    lf_jskv *writer = open_bucket(js, "T_OUTAGE");
    assert_int_equal(lf_jskv_put(writer, "k", "v1", 2, NULL, NULL), 0);
    assert_int_equal(lf_jskv_put(writer, "doomed", "d", 1, NULL, NULL), 0);
    lf_jskv *kv = open_bucket(js2, "T_OUTAGE");
    lf_jskv_mirror *m = NULL;
    assert_int_equal(lf_jskv_mirror_start(kv, 5000, &m, NULL), 0);
    char got[64];
    assert_string_equal(mirror_value(m, "k", got, sizeof got), "v1");

    lf_test_nats_kill(&n);
    int64_t until = lf_test_nats_now_ms() + 1500;
    while ((lf_jetstream_connected(js2) || lf_test_nats_now_ms() < until) && lf_test_nats_now_ms() < until + 10000) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_false(lf_jetstream_connected(js2));
    assert_string_equal(mirror_value(m, "k", got, sizeof got), "v1"); /* kept while away */

    assert_int_equal(lf_test_nats_start(&n), 0);
    lf_jetstream_close(js);
    js = NULL;
    lf_jskv_close(writer);
    lf_jetstream_options_init(&o);
    assert_int_equal(lf_test_nats_connect(&n, &o, 20000, &js), 0);
    writer = open_bucket(js, "T_OUTAGE");
    assert_int_equal(lf_jskv_delete(writer, "doomed", NULL), 0);
    assert_int_equal(lf_jskv_put(writer, "k", "v2", 2, NULL, NULL), 0);
    wait_mirror(m, "k", "v2", 15000);
    wait_mirror(m, "doomed", "", 15000);
    lf_jskv_mirror_stop(m);
    lf_jskv_close(kv);
    lf_jskv_close(writer);
    lf_jetstream_close(js);
    lf_jetstream_close(js2);
    lf_test_nats_stop(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_create_update_delete),
        cmocka_unit_test(each_lists_live_keys_in_order),
        cmocka_unit_test(bad_keys_and_names),
        cmocka_unit_test(mirror_follows_updates),
        cmocka_unit_test(mirror_start_fails_without_bucket_values),
        cmocka_unit_test(mirror_keeps_its_copy_across_an_outage),
    };
    int failed = cmocka_run_group_tests(tests, lf_test_nats_group_setup, lf_test_nats_group_teardown);
    lf_jetstream_shutdown();
    return failed;
}
