/* lf_es: Elasticsearch URLs, index names and credentials are checked at start-up (fail closed: a
 * secret file that cannot be read whole is an error, never "no password"), credentials become the
 * Authorization header, and every refusal is classed retry, hold or never. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_es.h"
#include "lf_fileio.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_es_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int url_ok(const char *url)
{
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_es_url_validate(&url, &err);
    lf_buf_free(&err);
    return rc;
}

static void urls(void **state)
{
    assert_int_equal(url_ok("http://127.0.0.1:9200"), 0);
    assert_int_equal(url_ok("https://es.example:9200/"), 0);
    assert_int_equal(url_ok("https://proxy.example/elastic"), 0);
    assert_int_equal(url_ok(NULL), 0); /* unset: the program decides whether it needs one */
    assert_int_equal(url_ok("https://elastic:changeme@es.example:9200"), LF_ECONFIG);
    assert_int_equal(url_ok("https://user@es.example"), LF_ECONFIG);
    assert_int_equal(url_ok("ftp://es.example"), LF_ECONFIG);
    assert_int_equal(url_ok("es.example:9200"), LF_ECONFIG);
    assert_int_equal(url_ok("http://"), LF_ECONFIG);
    assert_int_equal(url_ok("http://es.example/?pretty"), LF_ECONFIG);
    assert_int_equal(url_ok("http://es.example/a b"), LF_ECONFIG);
    /* an @ in the path is not a user */
    assert_int_equal(url_ok("http://es.example/a@b"), 0);
}

static int name_ok(const char *name)
{
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_es_index_name_validate(&name, &err);
    lf_buf_free(&err);
    return rc;
}

static void index_names(void **state)
{
    assert_int_equal(name_ok("logferry-events-"), 0);
    assert_int_equal(name_ok("logferry-sessions"), 0);
    assert_int_equal(name_ok("log"), 0); /* only logs-*-* is the built-in template's */
    assert_int_equal(name_ok("Logferry-events-"), LF_ECONFIG);
    assert_int_equal(name_ok("logs-app-"), LF_ECONFIG);
    assert_int_equal(name_ok("metrics-x"), LF_ECONFIG);
    assert_int_equal(name_ok("_private"), LF_ECONFIG);
    assert_int_equal(name_ok("-x"), LF_ECONFIG);
    assert_int_equal(name_ok(".hidden"), LF_ECONFIG);
    assert_int_equal(name_ok("a:b"), LF_ECONFIG);
    assert_int_equal(name_ok("a b"), LF_ECONFIG);
    assert_int_equal(name_ok("a*"), LF_ECONFIG);
    assert_int_equal(name_ok(""), LF_ECONFIG);
    char longname[260];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(name_ok(longname), LF_ECONFIG);
}

static void write_file(const char *path, const char *text, size_t len)
{
    assert_int_equal(lf_write_file_atomic(path, text, len, 0600), 0);
}

static int conn(lf_es_conn *c, const lf_es_auth *a, lf_buf *err)
{
    lf_buf_reset(err);
    return lf_es_conn_init(c, "https://es.example:9200/", a, err);
}

static void credentials(void **state)
{
    char pw[512], key[512], bad[512];
    snprintf(pw, sizeof pw, "%s/pw", tmpdir);
    snprintf(key, sizeof key, "%s/key", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad", tmpdir);
    lf_buf err = LF_BUF_INIT(512);
    lf_es_conn c;

    /* none: no header, the URL without its trailing slash */
    lf_es_auth none = {0};
    assert_int_equal(conn(&c, &none, &err), 0);
    assert_string_equal(c.url, "https://es.example:9200");
    assert_null(c.authorization);
    lf_es_conn_free(&c);

    /* basic from the file (one line, the newline is not part of it): RFC 7617's example */
    write_file(pw, "open sesame\n", 12);
    lf_es_auth basic = {.user = "Aladdin", .password_file = pw, .ca_file = "/etc/es/ca.pem"};
    assert_int_equal(conn(&c, &basic, &err), 0);
    assert_string_equal(c.authorization, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_string_equal(c.ca_file, "/etc/es/ca.pem");
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    lf_es_conn_client_opts(&c, &o);
    assert_string_equal(o.authorization, c.authorization);
    assert_string_equal(o.ca_file, "/etc/es/ca.pem");
    lf_es_conn_free(&c);

    lf_es_auth inline_pw = {.user = "Aladdin", .password = "open sesame"};
    assert_int_equal(conn(&c, &inline_pw, &err), 0);
    assert_string_equal(c.authorization, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    lf_es_conn_free(&c);

    /* API key from the file */
    write_file(key, "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\r\n", 62);
    lf_es_auth api = {.api_key_file = key};
    assert_int_equal(conn(&c, &api, &err), 0);
    assert_string_equal(c.authorization, "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==");
    lf_es_conn_free(&c);

    /* fail closed: a secret file that is missing, empty, two lines, NUL inside or huge */
    lf_es_auth missing = {.user = "u", .password_file = "/nonexistent/pw"};
    assert_int_equal(conn(&c, &missing, &err), LF_ECONFIG);
    assert_non_null(strstr(lf_buf_cstr(&err), "/nonexistent/pw"));
    lf_es_conn_free(&c);
    const char *contents[] = {"", "\n", "one\ntwo\n", "pa\0ss\n"};
    size_t lens[] = {0, 1, 8, 6};
    for (int i = 0; i < 4; i++) {
        write_file(bad, contents[i], lens[i]);
        lf_es_auth b = {.user = "u", .password_file = bad};
        assert_int_equal(conn(&c, &b, &err), LF_ECONFIG);
        assert_non_null(strstr(lf_buf_cstr(&err), "one non-empty line"));
        lf_es_conn_free(&c);
    }
    char *huge = malloc(10000);
    memset(huge, 'p', 10000);
    write_file(bad, huge, 10000);
    free(huge);
    lf_es_auth h = {.api_key_file = bad};
    assert_int_equal(conn(&c, &h, &err), LF_ECONFIG);
    lf_es_conn_free(&c);

    /* settings that do not go together */
    lf_es_auth both = {.user = "u", .password = "p", .api_key = "k"};
    assert_int_equal(conn(&c, &both, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_es_auth nopw = {.user = "u"};
    assert_int_equal(conn(&c, &nopw, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_es_auth nouser = {.password = "p"};
    assert_int_equal(conn(&c, &nouser, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_es_auth twice = {.user = "u", .password = "p", .password_file = pw};
    assert_int_equal(conn(&c, &twice, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_es_auth colon = {.user = "a:b", .password = "p"};
    assert_int_equal(conn(&c, &colon, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_es_auth spaced = {.api_key = "two words"};
    assert_int_equal(conn(&c, &spaced, &err), LF_ECONFIG);
    lf_es_conn_free(&c);

    /* credentials in the URL are refused even with good settings */
    assert_int_equal(lf_es_conn_init(&c, "https://u:p@es.example", &basic, &err), LF_ECONFIG);
    lf_es_conn_free(&c);
    lf_buf_free(&err);
}

static void refusals(void **state)
{
    /* retry later, as is */
    assert_int_equal(lf_es_classify(429, "es_rejected_execution_exception", NULL), LF_ES_RETRY);
    assert_int_equal(lf_es_classify(429, "circuit_breaking_exception", NULL), LF_ES_RETRY);
    assert_int_equal(lf_es_classify(503, "unavailable_shards_exception", NULL), LF_ES_RETRY);
    assert_int_equal(lf_es_classify(500, NULL, NULL), LF_ES_RETRY);
    assert_int_equal(lf_es_classify(408, NULL, NULL), LF_ES_RETRY);
    /* someone must act: keep the data */
    assert_int_equal(lf_es_classify(401, "security_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(403, "security_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(404, "index_not_found_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, "validation_exception", "this action would add [1] shards"), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, "invalid_index_name_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, "index_closed_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(413, NULL, NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, "illegal_argument_exception", "only write ops with an op_type of create "
                                                                        "are allowed in data streams"),
                     LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, "something_new_exception", NULL), LF_ES_HOLD);
    assert_int_equal(lf_es_classify(400, NULL, NULL), LF_ES_HOLD);
    /* the document itself */
    assert_int_equal(lf_es_classify(400, "document_parsing_exception", NULL), LF_ES_NEVER);
    assert_int_equal(lf_es_classify(400, "mapper_parsing_exception", NULL), LF_ES_NEVER);
    assert_int_equal(lf_es_classify(400, "strict_dynamic_mapping_exception", NULL), LF_ES_NEVER);
    assert_int_equal(lf_es_classify(400, "illegal_argument_exception",
                                    "Document contains at least one immense term in field=\"params\""),
                     LF_ES_NEVER);
    assert_string_equal(lf_es_refusal_name(LF_ES_HOLD), "hold");
    assert_non_null(strstr(lf_es_hold_hint(401, "security_exception"), "credentials"));
    assert_non_null(strstr(lf_es_hold_hint(400, "validation_exception"), "max_shards_per_node"));

    char type[64], reason[128];
    const char *body = "{\"error\":{\"root_cause\":[],\"type\":\"security_exception\",\"reason\":\"missing "
                       "authentication credentials\"},\"status\":401}";
    lf_es_error_of(body, strlen(body), type, sizeof type, reason, sizeof reason);
    assert_string_equal(type, "security_exception");
    assert_string_equal(reason, "missing authentication credentials");
    lf_es_error_of("not json", 8, type, sizeof type, reason, sizeof reason);
    assert_string_equal(type, "");
    assert_string_equal(reason, "");
    /* a type is only ever [a-z_]: it becomes a metric label */
    const char *odd = "{\"error\":{\"type\":\"evil\\\"} x\",\"reason\":\"r\"}}";
    lf_es_error_of(odd, strlen(odd), type, sizeof type, reason, sizeof reason);
    assert_string_equal(type, "evil");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls),
        cmocka_unit_test(index_names),
        cmocka_unit_test(credentials),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
