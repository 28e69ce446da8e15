/* Slack webhook bodies: valid JSON, the documented fields, hostile text made harmless. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lf_error.h"
#include "slack_message.h"

#define T0 1763776800000LL /* 2025-11-22 02:00:00 UTC */

static lf_alert_note make_note(int kind, int64_t since, int64_t at, const char *value, const char *thr,
                               const char *msg)
{
    lf_alert_note n;
    memset(&n, 0, sizeof(n));
    n.kind = kind;
    n.seq = 1;
    n.since_ms = since;
    n.at_ms = at;
    snprintf(n.value, sizeof(n.value), "%s", value);
    snprintf(n.threshold, sizeof(n.threshold), "%s", thr);
    snprintf(n.message, sizeof(n.message), "%s", msg);
    return n;
}

static json_t *build(const lf_slack_item *items, size_t n, const char *host, int64_t now)
{
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_slack_message_build(items, n, host, now, &out), 0);
    json_error_t err;
    json_t *root = json_loads(lf_buf_cstr(&out), 0, &err);
    if (!root)
        fail_msg("invalid JSON: %s in %s", err.text, lf_buf_cstr(&out));
    lf_buf_free(&out);
    return root;
}

static const char *field_value(json_t *att, const char *title)
{
    json_t *fields = json_object_get(att, "fields");
    assert_true(json_is_array(fields));
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        if (strcmp(json_string_value(json_object_get(f, "title")), title) == 0)
            return json_string_value(json_object_get(f, "value"));
    }
    fail_msg("no field %s", title);
    return NULL;
}

static void test_firing_message_fields(void **st)
{
    (void)st;
    lf_alert_note n = make_note(LF_NOTIFY_FIRING, T0, T0 + 5 * 60000, "depth 5000", "depth <= 1000",
                                "queue sessions is deep");
    lf_slack_item it = {"receiver_queue", &n, NULL};
    json_t *root = build(&it, 1, "mon-01", T0 + 5 * 60000);
    const char *text = json_string_value(json_object_get(root, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "FIRING"));
    assert_non_null(strstr(text, "receiver_queue"));
    assert_non_null(strstr(text, "mon-01"));
    json_t *atts = json_object_get(root, "attachments");
    assert_int_equal(json_array_size(atts), 1);
    json_t *a = json_array_get(atts, 0);
    assert_string_equal(json_string_value(json_object_get(a, "color")), "danger");
    assert_non_null(json_string_value(json_object_get(a, "fallback")));
    assert_non_null(strstr(json_string_value(json_object_get(a, "title")), "receiver_queue"));
    assert_non_null(strstr(json_string_value(json_object_get(a, "text")), "queue sessions is deep"));
    assert_string_equal(field_value(a, "Value"), "depth 5000");
    assert_string_equal(field_value(a, "Threshold"), "depth &lt;= 1000");
    assert_string_equal(field_value(a, "Failing since"), "2025-11-22 02:00:00 UTC (for 5m 0s)");
    assert_string_equal(field_value(a, "Host"), "mon-01");
    assert_int_equal(json_integer_value(json_object_get(a, "ts")), (T0 + 5 * 60000) / 1000);
    json_decref(root);
}

static void test_colours_and_wording(void **st)
{
    (void)st;
    struct {
        int kind;
        const char *color;
        const char *word;
    } cases[] = {
        {LF_NOTIFY_FIRING, "danger", "FIRING"},     {LF_NOTIFY_REMINDER, "danger", "STILL FAILING"},
        {LF_NOTIFY_RESOLVED, "good", "RESOLVED"},   {LF_NOTIFY_FLAPPING, "warning", "FLAPPING"},
        {LF_NOTIFY_FLAP_ENDED, "good", "STABLE AGAIN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lf_alert_note n = make_note(cases[i].kind, T0, T0 + 3723000, "v", "t", "m");
        lf_slack_item it = {"c", &n, NULL};
        json_t *root = build(&it, 1, "h", T0 + 3723000);
        json_t *a = json_array_get(json_object_get(root, "attachments"), 0);
        assert_string_equal(json_string_value(json_object_get(a, "color")), cases[i].color);
        assert_non_null(strstr(json_string_value(json_object_get(a, "title")), cases[i].word));
        assert_non_null(strstr(json_string_value(json_object_get(root, "text")), cases[i].word));
        if (cases[i].kind == LF_NOTIFY_RESOLVED)
            assert_string_equal(field_value(a, "Failing since"), "2025-11-22 02:00:00 UTC (lasted 1h 2m)");
        json_decref(root);
    }
}

static void test_group_is_one_message(void **st)
{
    (void)st;
    lf_alert_note a = make_note(LF_NOTIFY_FIRING, T0, T0, "1", "2", "a failed");
    lf_alert_note b = make_note(LF_NOTIFY_FIRING, T0, T0 + 2000, "3", "4", "b failed");
    lf_alert_note c = make_note(LF_NOTIFY_RESOLVED, T0 - 600000, T0 + 4000, "5", "6", "c fine");
    lf_slack_item items[] = {{"alpha", &a, NULL}, {"beta", &b, NULL}, {"gamma", &c, NULL}};
    json_t *root = build(items, 3, "mon", T0 + 5000);
    const char *text = json_string_value(json_object_get(root, "text"));
    assert_non_null(strstr(text, "3 alerts on mon (2 failing)"));
    assert_non_null(strstr(text, "alpha"));
    assert_non_null(strstr(text, "gamma"));
    json_t *atts = json_object_get(root, "attachments");
    assert_int_equal(json_array_size(atts), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 2), "color")), "good");
    assert_string_equal(field_value(json_array_get(atts, 1), "Value"), "3");
    json_decref(root);
}

static void test_hostile_names_are_escaped(void **st)
{
    (void)st;
    const char *hostile = "<!channel> \"q\" \\ & <https://evil.example|click>\x01\t\xff\xc0\xaf end";
    lf_alert_note n = make_note(LF_NOTIFY_FIRING, T0, T0, "<@U123>", "&amp;", hostile);
    lf_slack_item it = {hostile, &n, NULL};
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_slack_message_build(&it, 1, "<!here>", T0, &out), 0);
    /* no Slack control sequence survives anywhere in the body */
    assert_null(strstr(lf_buf_cstr(&out), "<!"));
    assert_null(strstr(lf_buf_cstr(&out), "<@"));
    assert_null(strstr(lf_buf_cstr(&out), "<http"));
    json_t *root = json_loads(lf_buf_cstr(&out), 0, NULL);
    assert_non_null(root);
    json_t *a = json_array_get(json_object_get(root, "attachments"), 0);
    const char *title = json_string_value(json_object_get(a, "title"));
    assert_string_equal(title, "FIRING: &lt;!channel&gt; \"q\" \\ &amp; &lt;https://evil.example|click&gt;  "
                               "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end");
    assert_string_equal(field_value(a, "Value"), "&lt;@U123&gt;");
    assert_string_equal(field_value(a, "Threshold"), "&amp;amp;");
    assert_string_equal(field_value(a, "Host"), "&lt;!here&gt;");
    json_decref(root);
    lf_buf_free(&out);
}

static void test_escape_utf8(void **st)
{
    (void)st;
    lf_buf b = LF_BUF_INIT(4096);
    /* valid multibyte kept; surrogate, overlong and truncated sequences replaced */
    assert_int_equal(lf_slack_escape(&b, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 100), 0);
    assert_string_equal(lf_buf_cstr(&b), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    lf_buf_reset(&b);
    assert_int_equal(lf_slack_escape(&b, "\xED\xA0\x80|\xE0\x80\x80|\xF4\x90\x80\x80|\xE2\x82", 100), 0);
    assert_null(strstr(lf_buf_cstr(&b), "\xED\xA0"));
    json_t *s = json_string(lf_buf_cstr(&b)); /* jansson accepts it only when it is valid UTF-8 */
    assert_non_null(s);
    json_decref(s);
    lf_buf_reset(&b);
    /* cut at the limit, even inside a multibyte sequence, with an ellipsis */
    assert_int_equal(lf_slack_escape(&b, "ab\xC3\xA9", 3), 0);
    assert_string_equal(lf_buf_cstr(&b), "ab\xEF\xBF\xBD\xE2\x80\xA6");
    lf_buf_free(&b);
}

static void test_long_text_is_bounded(void **st)
{
    (void)st;
    char name[5000];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    lf_alert_note n = make_note(LF_NOTIFY_FIRING, T0, T0, "v", "t", "m");
    lf_slack_item it = {name, &n, NULL};
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_slack_message_build(&it, 1, "h", T0, &out), 0);
    assert_true(out.len < 4000);
    lf_buf_free(&out);
}

static void test_invalid_arguments(void **st)
{
    (void)st;
    lf_alert_note n = make_note(LF_NOTIFY_FIRING, T0, T0, "v", "t", "m");
    lf_slack_item items[LF_SLACK_MAX_ITEMS + 1];
    for (size_t i = 0; i < LF_SLACK_MAX_ITEMS + 1; i++)
        items[i] = (lf_slack_item){"c", &n, NULL};
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_slack_message_build(items, 0, "h", T0, &out), -EINVAL);
    assert_int_equal(lf_slack_message_build(items, LF_SLACK_MAX_ITEMS + 1, "h", T0, &out), -EINVAL);
    lf_slack_item bad = {NULL, &n, NULL};
    assert_int_equal(lf_slack_message_build(&bad, 1, "h", T0, &out), -EINVAL);
    assert_int_equal(out.len, 0);
    assert_int_equal(lf_slack_message_build(items, LF_SLACK_MAX_ITEMS, "h", T0, &out), 0);
    lf_buf small = LF_BUF_INIT(100);
    assert_int_equal(lf_slack_message_build(items, 2, "h", T0, &small), LF_ELIMIT);
    lf_buf_free(&small);
    lf_buf_free(&out);
}

static void test_formatting(void **st)
{
    (void)st;
    char buf[64];
    lf_slack_format_duration(42000, buf, sizeof(buf));
    assert_string_equal(buf, "42s");
    lf_slack_format_duration(310000, buf, sizeof(buf));
    assert_string_equal(buf, "5m 10s");
    lf_slack_format_duration(2 * 3600000 + 5 * 60000 + 999, buf, sizeof(buf));
    assert_string_equal(buf, "2h 5m");
    lf_slack_format_duration(3 * 86400000LL + 4 * 3600000, buf, sizeof(buf));
    assert_string_equal(buf, "3d 4h");
    lf_slack_format_duration(-5, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
    lf_slack_format_utc(T0, buf, sizeof(buf));
    assert_string_equal(buf, "2025-11-22 02:00:00 UTC");
}

static void test_runbook_and_dashboard_links(void **st)
{
    (void)st;
    lf_alert_note n = make_note(LF_NOTIFY_FIRING, T0, T0 + 60000, "3 of 9 sites quiet", "an upload every 1d",
                                "acme sent nothing for 2d");
    lf_slack_item it = {"site_quiet", &n, "https://wiki.example.test/runbooks/site-quiet"};
    lf_buf out = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_slack_message_build_linked(&it, 1, "mon", "https://dash.example.test/pipeline", T0 + 60000,
                                                   &out), 0);
    json_t *root = json_loads(lf_buf_cstr(&out), 0, NULL);
    assert_non_null(root);
    json_t *a = json_array_get(json_object_get(root, "attachments"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "title_link")),
                        "https://wiki.example.test/runbooks/site-quiet");
    assert_non_null(field_value(a, "Runbook"));
    assert_string_equal(field_value(a, "Runbook"), "<https://wiki.example.test/runbooks/site-quiet|what to do>");
    assert_string_equal(field_value(a, "Dashboard"), "<https://dash.example.test/pipeline|open>");
    json_decref(root);
    /* without links: no such fields */
    lf_buf_reset(&out);
    it.runbook_url = NULL;
    assert_int_equal(lf_slack_message_build(&it, 1, "mon", T0 + 60000, &out), 0);
    root = json_loads(lf_buf_cstr(&out), 0, NULL);
    a = json_array_get(json_object_get(root, "attachments"), 0);
    json_t *f;
    size_t i;
    json_array_foreach(json_object_get(a, "fields"), i, f)
    {
        const char *title = json_string_value(json_object_get(f, "title"));
        assert_true(strcmp(title, "Runbook") != 0 && strcmp(title, "Dashboard") != 0);
    }
    assert_null(json_object_get(a, "title_link"));
    json_decref(root);
    lf_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_firing_message_fields),
        cmocka_unit_test(test_colours_and_wording),
        cmocka_unit_test(test_group_is_one_message),
        cmocka_unit_test(test_hostile_names_are_escaped),
        cmocka_unit_test(test_escape_utf8),
        cmocka_unit_test(test_long_text_is_bounded),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_runbook_and_dashboard_links),
        cmocka_unit_test(test_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
