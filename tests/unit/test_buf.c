/* lf_buf: bounded growth, failure leaves the buffer unchanged, allocation failures are reported. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lf_buf.h"
#include "lf_error.h"
#include "lf_failpoint.h"

static void append_and_cstr(void **state)
{
    lf_buf b = LF_BUF_INIT(100);
    assert_string_equal(lf_buf_cstr(&b), "");
    assert_int_equal(lf_buf_append_str(&b, "hello"), 0);
    assert_int_equal(lf_buf_append_char(&b, ' '), 0);
    assert_int_equal(lf_buf_appendf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(lf_buf_cstr(&b), "hello 42-x");
    assert_int_equal(b.len, 10);
    lf_buf_consume(&b, 6);
    assert_string_equal(lf_buf_cstr(&b), "42-x");
    lf_buf_truncate(&b, 2);
    assert_string_equal(lf_buf_cstr(&b), "42");
    lf_buf_free(&b);
}

static void limit_is_enforced_and_atomic(void **state)
{
    lf_buf b = LF_BUF_INIT(8);
    assert_int_equal(lf_buf_append_str(&b, "12345678"), 0);
    assert_int_equal(lf_buf_append_char(&b, '9'), LF_ELIMIT);
    assert_string_equal(lf_buf_cstr(&b), "12345678");
    lf_buf_reset(&b);
    assert_int_equal(lf_buf_appendf(&b, "%s", "0123456789"), LF_ELIMIT);
    assert_int_equal(b.len, 0);
    /* a huge length must not overflow the size computation */
    assert_int_equal(lf_buf_append(&b, "x", SIZE_MAX), LF_ELIMIT);
    lf_buf_free(&b);
}

static void long_format_goes_through_slow_path(void **state)
{
    lf_buf b = LF_BUF_INIT(10000);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(lf_buf_appendf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1000], '>');
    size_t len;
    char *p = lf_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 1001);
    assert_null(b.data);
    free(p);
}

static void every_allocation_failure_is_reported(void **state)
{
    /* Fail the nth allocation for each n until a run succeeds: each failure must be an error
     * return with the buffer still consistent (curl's torture idea). */
    for (uint64_t n = 1; n < 50; n++) {
        lf_buf b = LF_BUF_INIT(1 << 20);
        lf_fail_arm(LF_FAIL_ALLOC, n, false);
        int failures = 0;
        for (int i = 0; i < 200; i++) {
            int rc = lf_buf_appendf(&b, "line %d\n", i);
            if (rc) {
                assert_int_equal(rc, -ENOMEM);
                failures++;
            }
        }
        size_t calls = lf_fail_calls(LF_FAIL_ALLOC);
        lf_fail_disarm(LF_FAIL_ALLOC);
        assert_int_equal(strlen(lf_buf_cstr(&b)), b.len);
        lf_buf_free(&b);
        if (n > calls) {
            assert_int_equal(failures, 0);
            return;
        }
        assert_int_equal(failures, 1);
    }
    fail_msg("allocation count did not converge");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_cstr),
        cmocka_unit_test(limit_is_enforced_and_atomic),
        cmocka_unit_test(long_format_goes_through_slow_path),
        cmocka_unit_test(every_allocation_failure_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
