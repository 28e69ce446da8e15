/* lf_metrics: the exact Prometheus text exposition, registration rules, concurrent updates. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lf_buf.h"
#include "lf_failpoint.h"
#include "lf_metrics.h"

static double queue_depth(void *arg)
{
    return *(double *)arg;
}

static void exposition_text(void **state)
{
    lf_metrics *reg;
    assert_int_equal(lf_metrics_new(&reg), 0);
    lf_counter *stored = lf_metrics_counter(reg, "lf_uploads_total", "Uploads by outcome", "outcome=\"stored\"");
    lf_counter *dup = lf_metrics_counter(reg, "lf_uploads_total", "Uploads by outcome", "outcome=\"duplicate\"");
    lf_gauge *temp = lf_metrics_gauge(reg, "lf_temperature", "A gauge\nwith \\ in help", NULL);
    static const double bounds[] = {0.005, 0.1, 1, 2.5};
    lf_histogram *lat = lf_metrics_histogram(reg, "lf_request_seconds", "Latency", "route=\"put\"", bounds, 4);
    double depth = 42;
    assert_int_equal(lf_metrics_gauge_fn(reg, "lf_queue_depth", "Depth", "queue=\"a\\\"b\\\\c\\n\"",
                                         queue_depth, &depth),
                     0);
    assert_non_null(stored);
    assert_non_null(dup);
    assert_non_null(temp);
    assert_non_null(lat);
    lf_counter_add(stored, 3);
    lf_counter_inc(stored);
    lf_counter_inc(dup);
    lf_gauge_set(temp, 20.5);
    lf_gauge_add(temp, -1.25);
    lf_histogram_observe(lat, 0.005); /* on the bound: counted in it (le) */
    lf_histogram_observe(lat, 0.05);
    lf_histogram_observe(lat, 2);
    lf_histogram_observe(lat, 100);
    assert_int_equal(lf_counter_value(stored), 4);
    assert_true(lf_gauge_value(temp) == 19.25);

    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_metrics_render(reg, &out), 0);
    const char *want = "# HELP lf_uploads_total Uploads by outcome\n"
                       "# TYPE lf_uploads_total counter\n"
                       "lf_uploads_total{outcome=\"stored\"} 4\n"
                       "lf_uploads_total{outcome=\"duplicate\"} 1\n"
                       "# HELP lf_temperature A gauge\\nwith \\\\ in help\n"
                       "# TYPE lf_temperature gauge\n"
                       "lf_temperature 19.25\n"
                       "# HELP lf_request_seconds Latency\n"
                       "# TYPE lf_request_seconds histogram\n"
                       "lf_request_seconds_bucket{route=\"put\",le=\"0.005\"} 1\n"
                       "lf_request_seconds_bucket{route=\"put\",le=\"0.1\"} 2\n"
                       "lf_request_seconds_bucket{route=\"put\",le=\"1\"} 2\n"
                       "lf_request_seconds_bucket{route=\"put\",le=\"2.5\"} 3\n"
                       "lf_request_seconds_bucket{route=\"put\",le=\"+Inf\"} 4\n"
                       "lf_request_seconds_sum{route=\"put\"} 102.055\n"
                       "lf_request_seconds_count{route=\"put\"} 4\n"
                       "# HELP lf_queue_depth Depth\n"
                       "# TYPE lf_queue_depth gauge\n"
                       "lf_queue_depth{queue=\"a\\\"b\\\\c\\n\"} 42\n";
    assert_string_equal(lf_buf_cstr(&out), want);

    /* callback evaluated at render time; special values */
    depth = INFINITY;
    lf_gauge_set(temp, NAN);
    lf_buf_reset(&out);
    assert_int_equal(lf_metrics_render(reg, &out), 0);
    assert_non_null(strstr(lf_buf_cstr(&out), "\nlf_queue_depth{queue=\"a\\\"b\\\\c\\n\"} +Inf\n"));
    assert_non_null(strstr(lf_buf_cstr(&out), "\nlf_temperature NaN\n"));

    /* a buffer too small fails with its limit, not a truncated exposition claimed complete */
    lf_buf small = LF_BUF_INIT(64);
    assert_true(lf_metrics_render(reg, &small) != 0);
    lf_buf_free(&small);
    lf_buf_free(&out);
    lf_metrics_free(reg);
}

static void histogram_without_labels(void **state)
{
    lf_metrics *reg;
    assert_int_equal(lf_metrics_new(&reg), 0);
    static const double b[] = {1};
    lf_histogram *h = lf_metrics_histogram(reg, "h", "H", NULL, b, 1);
    lf_histogram_observe(h, 0.25);
    lf_buf out = LF_BUF_INIT(4096);
    assert_int_equal(lf_metrics_render(reg, &out), 0);
    assert_string_equal(lf_buf_cstr(&out), "# HELP h H\n# TYPE h histogram\n"
                                           "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
                                           "h_sum 0.25\nh_count 1\n");
    lf_buf_free(&out);
    lf_metrics_free(reg);
}

static void registration_rules(void **state)
{
    lf_metrics *reg;
    assert_int_equal(lf_metrics_new(&reg), 0);
    lf_counter *a = lf_metrics_counter(reg, "x_total", "X", "k=\"v\"");
    assert_ptr_equal(lf_metrics_counter(reg, "x_total", "X", "k=\"v\""), a);
    assert_ptr_not_equal(lf_metrics_counter(reg, "x_total", "X", NULL), a);
    assert_null(lf_metrics_gauge(reg, "x_total", "X", NULL)); /* type clash */
    assert_null(lf_metrics_counter(reg, "1bad", "X", NULL));
    assert_null(lf_metrics_counter(reg, "bad-name", "X", NULL));
    assert_null(lf_metrics_counter(reg, "ok", "X", "k=v"));
    assert_null(lf_metrics_counter(reg, "ok", "X", "k=\"unterminated"));
    assert_null(lf_metrics_counter(reg, "ok", "X", "k=\"bad \\x escape\""));
    assert_null(lf_metrics_counter(reg, "ok", "X", "le=\"1\""));
    assert_null(lf_metrics_counter(reg, "ok", "X", "__name=\"1\""));
    assert_null(lf_metrics_counter(reg, "ok", "X", "a=\"1\",,b=\"2\""));
    assert_non_null(lf_metrics_counter(reg, "ok", "X", "a=\"1\",b=\"2\""));
    static const double unsorted[] = {2, 1};
    assert_null(lf_metrics_histogram(reg, "hh", "H", NULL, unsorted, 2));
    static const double sorted[] = {1, 2};
    lf_histogram *h = lf_metrics_histogram(reg, "hh", "H", NULL, sorted, 2);
    assert_non_null(h);
    assert_ptr_equal(lf_metrics_histogram(reg, "hh", "H", NULL, sorted, 2), h);
    assert_null(lf_metrics_histogram(reg, "hh", "H", NULL, sorted, 1)); /* other buckets */
    assert_int_equal(lf_metrics_gauge_fn(reg, "g", "G", NULL, queue_depth, NULL), 0);
    assert_int_equal(lf_metrics_gauge_fn(reg, "g", "G", NULL, queue_depth, NULL), -EEXIST);
    assert_null(lf_metrics_gauge(reg, "g", "G", NULL)); /* a callback gauge cannot be set */

    lf_buf esc = LF_BUF_INIT(100);
    assert_int_equal(lf_metrics_escape_label(&esc, "a\"b\\c\nd"), 0);
    assert_string_equal(lf_buf_cstr(&esc), "a\\\"b\\\\c\\nd");
    lf_buf_free(&esc);
    lf_metrics_free(reg);
}

static void allocation_failures(void **state)
{
    for (uint64_t nth = 1; nth < 20; nth++) {
        lf_metrics *reg = NULL;
        lf_fail_arm(LF_FAIL_ALLOC, nth, false);
        int rc = lf_metrics_new(&reg);
        static const double b[] = {1, 2};
        lf_histogram *h = rc ? NULL : lf_metrics_histogram(reg, "h", "H", "a=\"b\"", b, 2);
        lf_counter *c = rc ? NULL : lf_metrics_counter(reg, "c", "C", NULL);
        bool hit = lf_fail_calls(LF_FAIL_ALLOC) >= nth;
        lf_fail_disarm(LF_FAIL_ALLOC);
        if (!hit) {
            assert_non_null(h);
            assert_non_null(c);
            lf_metrics_free(reg);
            return;
        }
        assert_true(rc != 0 || !h || !c);
        if (reg) { /* what registered still renders */
            lf_buf out = LF_BUF_INIT(4096);
            assert_int_equal(lf_metrics_render(reg, &out), 0);
            lf_buf_free(&out);
        }
        lf_metrics_free(reg);
    }
    fail_msg("never succeeded");
}

struct worker {
    lf_counter *c;
    lf_gauge *g;
    lf_histogram *h;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 100000; i++) {
        lf_counter_inc(w->c);
        lf_gauge_add(w->g, 1);
        lf_histogram_observe(w->h, (double)(i % 3));
    }
    return NULL;
}

static void concurrent_updates(void **state)
{
    lf_metrics *reg;
    assert_int_equal(lf_metrics_new(&reg), 0);
    static const double b[] = {0.5, 1.5};
    struct worker w = {lf_metrics_counter(reg, "c", "C", NULL), lf_metrics_gauge(reg, "g", "G", NULL),
                       lf_metrics_histogram(reg, "h", "H", NULL, b, 2)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &w);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(lf_counter_value(w.c), 400000);
    assert_true(lf_gauge_value(w.g) == 400000);
    lf_buf out = LF_BUF_INIT(4096);
    assert_int_equal(lf_metrics_render(reg, &out), 0);
    assert_non_null(strstr(lf_buf_cstr(&out), "h_count 400000\n"));
    /* i % 3 over 100000 per thread: 33334 zeros, 33333 ones, 33333 twos */
    assert_non_null(strstr(lf_buf_cstr(&out), "h_bucket{le=\"0.5\"} 133336\n"));
    assert_non_null(strstr(lf_buf_cstr(&out), "h_bucket{le=\"1.5\"} 266668\n"));
    assert_non_null(strstr(lf_buf_cstr(&out), "h_sum 399996\n"));
    lf_buf_free(&out);
    lf_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exposition_text),  cmocka_unit_test(histogram_without_labels),
        cmocka_unit_test(registration_rules), cmocka_unit_test(allocation_failures),
        cmocka_unit_test(concurrent_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
