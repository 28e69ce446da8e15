/* lf_json: bounded parsing with messages, typed getters, compact dumps into bounded buffers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lf_error.h"
#include "lf_json.h"

static void parse_and_limits(void **state)
{
    json_t *v = NULL;
    lf_buf err = LF_BUF_INIT(512);
    const char *text = "{\"a\": 1}";
    assert_int_equal(lf_json_parse(text, strlen(text), 100, &v, &err), 0);
    assert_true(json_is_object(v));
    json_decref(v);

    assert_int_equal(lf_json_parse(text, strlen(text), 7, &v, &err), LF_ELIMIT);
    assert_string_equal(lf_buf_cstr(&err), "JSON text of 8 bytes is larger than the limit of 7");
    lf_buf_reset(&err);

    const char *bad = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(lf_json_parse(bad, strlen(bad), 100, &v, &err), LF_EFORMAT);
    assert_string_equal(lf_buf_cstr(&err), "line 2, column 7: unexpected token near '}'");
    lf_buf_reset(&err);

    const char *dup = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(lf_json_parse(dup, strlen(dup), 100, &v, &err), LF_EFORMAT);
    assert_non_null(strstr(lf_buf_cstr(&err), "duplicate object key"));
    lf_buf_reset(&err);

    const char *nul = "\"a\\u0000b\"";
    assert_int_equal(lf_json_parse(nul, strlen(nul), 100, &v, &err), LF_EFORMAT);
    lf_buf_reset(&err);

    /* not NUL-terminated: only len bytes are read */
    const char raw[] = {'[', '1', ']', 'x'};
    assert_int_equal(lf_json_parse(raw, 3, 100, &v, NULL), 0);
    assert_int_equal(json_array_size(v), 1);
    json_decref(v);
    assert_int_equal(lf_json_parse(raw, 4, 100, &v, NULL), LF_EFORMAT);
    assert_int_equal(lf_json_parse("", 0, 100, &v, NULL), LF_EFORMAT);
    lf_buf_free(&err);
}

static void getters(void **state)
{
    const char *text = "{\"s\":\"str\",\"i\":-3,\"u\":7,\"d\":1.5,\"b\":true,\"o\":{},\"a\":[1],\"n\":null}";
    json_t *v;
    assert_int_equal(lf_json_parse(text, strlen(text), 1000, &v, NULL), 0);
    const char *s;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    json_t *o;
    assert_int_equal(lf_json_get_string(v, "s", &s), 0);
    assert_string_equal(s, "str");
    assert_int_equal(lf_json_get_string(v, "i", &s), -EINVAL);
    assert_int_equal(lf_json_get_string(v, "missing", &s), -EINVAL);
    assert_int_equal(lf_json_get_int(v, "i", &i), 0);
    assert_int_equal(i, -3);
    assert_int_equal(lf_json_get_int(v, "d", &i), -EINVAL);
    assert_int_equal(lf_json_get_uint(v, "u", &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(lf_json_get_uint(v, "i", &u), -EINVAL);
    assert_int_equal(lf_json_get_double(v, "d", &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(lf_json_get_double(v, "u", &d), 0);
    assert_true(d == 7);
    assert_int_equal(lf_json_get_double(v, "s", &d), -EINVAL);
    assert_int_equal(lf_json_get_bool(v, "b", &b), 0);
    assert_true(b);
    assert_int_equal(lf_json_get_bool(v, "u", &b), -EINVAL);
    assert_int_equal(lf_json_get_object(v, "o", &o), 0);
    assert_true(json_is_object(o));
    assert_int_equal(lf_json_get_object(v, "a", &o), -EINVAL);
    assert_int_equal(lf_json_get_array(v, "a", &o), 0);
    assert_int_equal(json_array_size(o), 1);
    assert_int_equal(lf_json_get_array(v, "o", &o), -EINVAL);
    /* not an object at all */
    assert_int_equal(lf_json_get_string(o, "s", &s), -EINVAL);

    s = "unchanged";
    assert_int_equal(lf_json_opt_string(v, "missing", &s), 0);
    assert_int_equal(lf_json_opt_string(v, "n", &s), 0);
    assert_string_equal(s, "unchanged");
    assert_int_equal(lf_json_opt_string(v, "s", &s), 0);
    assert_string_equal(s, "str");
    assert_int_equal(lf_json_opt_string(v, "i", &s), -EINVAL);
    i = 99;
    assert_int_equal(lf_json_opt_int(v, "missing", &i), 0);
    assert_int_equal(i, 99);
    assert_int_equal(lf_json_opt_int(v, "s", &i), -EINVAL);
    u = 5;
    assert_int_equal(lf_json_opt_uint(v, "n", &u), 0);
    assert_int_equal(u, 5);
    assert_int_equal(lf_json_opt_uint(v, "i", &u), -EINVAL);
    b = false;
    assert_int_equal(lf_json_opt_bool(v, "b", &b), 0);
    assert_true(b);
    assert_int_equal(lf_json_opt_bool(o, "b", &b), -EINVAL);
    json_decref(v);
}

static void dump(void **state)
{
    json_t *v = json_pack("{s:s, s:i, s:[b, n]}", "z", "q\"\n", "a", 1, "l", 1);
    lf_buf out = LF_BUF_INIT(1000);
    assert_int_equal(lf_buf_append_str(&out, ">"), 0);
    assert_int_equal(lf_json_dump(v, &out), 0);
    assert_string_equal(lf_buf_cstr(&out), ">{\"z\":\"q\\\"\\n\",\"a\":1,\"l\":[true,null]}");
    lf_buf small = LF_BUF_INIT(10);
    assert_int_equal(lf_buf_append_str(&small, "keep"), 0);
    assert_int_equal(lf_json_dump(v, &small), LF_ELIMIT);
    assert_string_equal(lf_buf_cstr(&small), "keep");
    json_decref(v);
    lf_buf_free(&out);
    lf_buf_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_limits),
        cmocka_unit_test(getters),
        cmocka_unit_test(dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
