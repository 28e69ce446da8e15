/* lf_service: listen address parsing and validation (the daemon itself is exercised end to end by
 * tests/integration/test_programs.py). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lf_service.h"

static void parse_listen(void **state)
{
    char host[64];
    int port;
    assert_int_equal(lf_service_parse_listen("127.0.0.1:8440", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8440);
    assert_int_equal(lf_service_parse_listen("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(lf_service_parse_listen("0.0.0.0:65535", host, sizeof host, &port), 0);
    assert_int_equal(port, 65535);
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:8a",
                         "::1:80", "[::1]80", "[::1", "[]:80", "h:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lf_service_parse_listen(bad[i], host, sizeof host, &port) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    char tiny[4];
    assert_int_equal(lf_service_parse_listen("127.0.0.1:1", tiny, sizeof tiny, &port), -EINVAL);
}

static void validate_listen(void **state)
{
    lf_buf err = LF_BUF_INIT(256);
    const char *ok = "[::1]:8440";
    assert_int_equal(lf_service_validate_listen(&ok, &err), 0);
    const char *name = "localhost:8440";
    assert_int_equal(lf_service_validate_listen(&name, &err), -EINVAL);
    assert_string_equal(lf_buf_cstr(&err), "\"localhost\" is not a numeric IPv4 or IPv6 address");
    lf_buf_reset(&err);
    const char *bad = "nowhere";
    assert_int_equal(lf_service_validate_listen(&bad, &err), -EINVAL);
    assert_string_equal(lf_buf_cstr(&err), "\"nowhere\" is not HOST:PORT or [IPV6]:PORT");
    lf_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_listen),
        cmocka_unit_test(validate_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
