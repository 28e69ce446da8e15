/* lf_manifest: the strict schema (every field's rule, unknown and duplicate keys, sizes), the
 * canonical build and round trip, and the session id derivation (stable, and injective across
 * field boundaries). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_fileio.h"
#include "lf_manifest.h"
#include "lf_zip.h"

#include <fcntl.h>
#include <unistd.h>

#define SID "0123456789abcdef0123456789abcdef"
#define HASH "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
#define BASE                                                                                       \
    "\"format\":1,\"session_id\":\"" SID "\",\"site\":\"acme-1\",\"product\":\"Studio\","         \
    "\"product_version\":\"4.2.1\",\"log_type\":\"classic\",\"log_name\":\"session.log\","        \
    "\"log_size\":0,\"log_blake2b\":\"" HASH "\""

static int parse_err(const char *json, char *err, size_t errsz)
{
    lf_manifest m;
    int rc = lf_manifest_parse(&m, json, strlen(json), err, errsz);
    if (rc == 0)
        lf_manifest_free(&m);
    else
        assert_null(m.site); /* nothing left owned on failure */
    return rc;
}

/* Parses and, on failure, checks that the message names the field. */
static void expect_bad(const char *json, const char *field)
{
    char err[300] = "";
    int rc = parse_err(json, err, sizeof err);
    if (rc == 0)
        fail_msg("accepted: %s", json);
    if (strncmp(err, field, strlen(field)) != 0)
        fail_msg("error \"%s\" does not name %s (input %s)", err, field, json);
}

static void minimal_and_full_manifests_parse(void **state)
{
    lf_manifest m;
    char err[256];
    const char *json = "{" BASE "}";
    assert_int_equal(lf_manifest_parse(&m, json, strlen(json), err, sizeof err), 0);
    assert_string_equal(m.session_id, SID);
    assert_string_equal(m.site, "acme-1");
    assert_string_equal(m.log_name, "session.log");
    assert_null(m.host);
    assert_int_equal(m.part, 0);
    lf_manifest_free(&m);

    const char *full = "{" BASE ",\"host\":\"ws-17\",\"user\":\"j\\u00f6rg\",\"source_path\":"
                       "\"C:\\\\logs\\\\s.log\",\"started_at\":\"2026-02-28T23:59:59Z\","
                       "\"ended_at\":\"2026-03-01T00:00:00.123Z\",\"continuation_of\":"
                       "\"ffffffffffffffffffffffffffffffff\",\"part\":2,\"metadata\":{\"b\":\"2\","
                       "\"A.x-y_z\":\"\"}}";
    assert_int_equal(lf_manifest_parse(&m, full, strlen(full), err, sizeof err), 0);
    assert_string_equal(m.user, "j\xc3\xb6rg");
    assert_string_equal(m.source_path, "C:\\logs\\s.log");
    assert_int_equal(m.part, 2);
    assert_int_equal(m.metadata_count, 2);
    assert_string_equal(m.metadata[0].key, "A.x-y_z"); /* sorted */
    assert_string_equal(m.metadata[1].value, "2");

    /* canonical build: sorted keys, compact; and it parses back to the same */
    lf_buf out = LF_BUF_INIT(LF_MANIFEST_MAX);
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), 0);
    assert_int_equal(strncmp(out.data, "{\"continuation_of\":\"fff", 23), 0);
    assert_null(strchr(out.data, ' '));
    lf_manifest m2;
    assert_int_equal(lf_manifest_parse(&m2, out.data, out.len, err, sizeof err), 0);
    lf_buf out2 = LF_BUF_INIT(LF_MANIFEST_MAX);
    assert_int_equal(lf_manifest_build(&m2, &out2, err, sizeof err), 0);
    assert_string_equal(out.data, out2.data);
    lf_buf_free(&out);
    lf_buf_free(&out2);
    lf_manifest_free(&m2);
    lf_manifest_free(&m);
}

static void every_rule_is_enforced(void **state)
{
    char j[2000];
#define J(...) (snprintf(j, sizeof j, __VA_ARGS__), j)
    expect_bad("[]", "manifest");
    expect_bad("{" BASE ",}", "manifest");
    expect_bad("not json", "manifest");
    expect_bad(J("{%s,\"extra\":1}", BASE), "extra");
    expect_bad(J("{%s,\"host\":\"a\\u0000b\"}", BASE), "manifest"); /* NUL: refused by the JSON reader */
    expect_bad(J("{%s,\"site\":\"acme-1\"}", BASE), "manifest"); /* duplicate key */
    /* format */
    expect_bad("{\"session_id\":\"" SID "\"}", "format");
    expect_bad(J("{\"format\":2%s}", strstr(BASE, ",")), "format");
    expect_bad(J("{\"format\":1.0%s}", strstr(BASE, ",")), "format");
    expect_bad(J("{\"format\":\"1\"%s}", strstr(BASE, ",")), "format");
    /* one field at a time: replace its value */
    struct {
        const char *field, *value;
    } cases[] = {
        {"session_id", "\"0123456789ABCDEF0123456789abcdef\""},
        {"session_id", "\"0123\""},
        {"session_id", "12"},
        {"site", "\"Acme\""},
        {"site", "\"\""},
        {"site", "\"a/b\""},
        {"site", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""},
        {"product", "\"\""},
        {"product", "\"a\\nb\""},
        {"product_version", "null"},
        {"log_type", "\"Classic\""},
        {"log_type", "\"a.b\""},
        {"log_name", "\"../x.log\""},
        {"log_name", "\"/x.log\""},
        {"log_name", "\"manifest.json\""},
        {"log_name", "\"dir/\""},
        {"log_size", "-1"},
        {"log_size", "\"10\""},
        {"log_size", "1.5"},
        {"log_blake2b", "\"" SID "\""},
        {"log_blake2b", "\"0E5751C026E543B2E8AB2EB06099DAA1D1E5DF47778F7787FAAB45CDF12FE3A8\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* rebuild BASE with one value swapped */
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", cases[i].field);
        const char *at = strstr(BASE, key);
        assert_non_null(at);
        const char *vstart = at + strlen(key);
        const char *vend = vstart;
        if (*vend == '"') {
            vend = strchr(vend + 1, '"') + 1;
        } else {
            while (*vend && *vend != ',')
                vend++;
        }
        snprintf(j, sizeof j, "{%.*s%s%s}", (int)(vstart - BASE), BASE, cases[i].value, vend);
        expect_bad(j, cases[i].field);
    }
    /* required fields missing */
    expect_bad("{\"format\":1}", "session_id");
    /* optional fields */
    expect_bad(J("{%s,\"host\":\"\"}", BASE), "host");
    expect_bad(J("{%s,\"host\":5}", BASE), "host");
    expect_bad(J("{%s,\"user\":\"a\\tb\"}", BASE), "user");
    expect_bad(J("{%s,\"started_at\":\"2026-02-29T00:00:00Z\"}", BASE), "started_at");
    expect_bad(J("{%s,\"started_at\":\"2026-01-01 00:00:00Z\"}", BASE), "started_at");
    expect_bad(J("{%s,\"started_at\":\"2026-01-01T00:00:00+01:00\"}", BASE), "started_at");
    expect_bad(J("{%s,\"started_at\":\"2026-01-01T24:00:00Z\"}", BASE), "started_at");
    expect_bad(J("{%s,\"ended_at\":\"2026-01-01T00:00:00.Z\"}", BASE), "ended_at");
    expect_bad(J("{%s,\"started_at\":\"2026-01-02T00:00:00Z\",\"ended_at\":\"2026-01-01T00:00:00Z\"}",
                 BASE),
               "ended_at");
    expect_bad(J("{%s,\"continuation_of\":\"%s\",\"part\":1}", BASE, SID), "continuation_of");
    expect_bad(J("{%s,\"continuation_of\":\"ffffffffffffffffffffffffffffffff\"}", BASE), "part");
    expect_bad(J("{%s,\"part\":3}", BASE), "continuation_of");
    expect_bad(J("{%s,\"continuation_of\":\"ffffffffffffffffffffffffffffffff\",\"part\":0}", BASE),
               "part");
    expect_bad(J("{%s,\"metadata\":[]}", BASE), "metadata");
    expect_bad(J("{%s,\"metadata\":{\"k\":1}}", BASE), "metadata.k");
    expect_bad(J("{%s,\"metadata\":{\"bad key\":\"v\"}}", BASE), "metadata");
    expect_bad(J("{%s,\"metadata\":{\"k\":\"v\",\"k\":\"w\"}}", BASE), "manifest");
    /* 65 metadata keys */
    int n = snprintf(j, sizeof j, "{%s,\"metadata\":{", BASE);
    for (int i = 0; i < 65; i++)
        n += snprintf(j + n, sizeof j - (size_t)n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(j + n, sizeof j - (size_t)n, "}}");
    expect_bad(j, "metadata");
    /* size bound */
    char *big = malloc(LF_MANIFEST_MAX + 100);
    memset(big, ' ', LF_MANIFEST_MAX + 100);
    memcpy(big, "{" BASE "}", strlen("{" BASE "}"));
    lf_manifest m;
    assert_int_equal(lf_manifest_parse(&m, big, LF_MANIFEST_MAX + 1, NULL, 0), LF_ELIMIT);
    assert_int_equal(lf_manifest_parse(&m, big, LF_MANIFEST_MAX, NULL, 0), 0);
    lf_manifest_free(&m);
    free(big);
#undef J
}

static void build_refuses_invalid_structs(void **state)
{
    lf_manifest m;
    lf_manifest_init(&m);
    char err[256];
    lf_buf out = LF_BUF_INIT(LF_MANIFEST_MAX);
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), LF_EFORMAT);
    assert_int_equal(strncmp(err, "session_id", 10), 0);
    memcpy(m.session_id, SID, sizeof SID);
    m.site = strdup("acme");
    m.product = strdup("P");
    m.product_version = strdup("1");
    m.log_type = strdup("json");
    m.log_name = strdup("s.log");
    m.log_size = 12;
    memcpy(m.log_blake2b, HASH, sizeof HASH);
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), 0);
    assert_int_equal(lf_manifest_set_metadata(&m, "zeta", "1"), 0);
    assert_int_equal(lf_manifest_set_metadata(&m, "alpha", "2"), 0);
    assert_int_equal(lf_manifest_set_metadata(&m, "zeta", "3"), 0);
    assert_int_equal(lf_manifest_set_metadata(&m, "no space", "3"), -EINVAL);
    assert_int_equal(m.metadata_count, 2);
    assert_string_equal(m.metadata[0].key, "alpha");
    assert_string_equal(m.metadata[1].value, "3");
    lf_buf_reset(&out);
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), 0);
    assert_non_null(strstr(out.data, "\"metadata\":{\"alpha\":\"2\",\"zeta\":\"3\"}"));
    /* invalid UTF-8 and invalid values are refused, naming the field */
    free(m.host);
    m.host = strdup("bad\xff");
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), LF_EFORMAT);
    assert_int_equal(strncmp(err, "host", 4), 0);
    free(m.host);
    m.host = NULL;
    free(m.site);
    m.site = strdup("UPPER");
    assert_int_equal(lf_manifest_build(&m, &out, err, sizeof err), LF_EFORMAT);
    assert_int_equal(strncmp(err, "site", 4), 0);
    lf_buf_free(&out);
    lf_manifest_free(&m);
}

static void allocation_failures_are_clean(void **state)
{
    const char *json = "{" BASE ",\"host\":\"h\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"}}";
    for (uint64_t nth = 1; nth < 40; nth++) {
        lf_manifest m;
        lf_fail_arm(LF_FAIL_ALLOC, nth, false);
        int rc = lf_manifest_parse(&m, json, strlen(json), NULL, 0);
        lf_fail_disarm(LF_FAIL_ALLOC);
        assert_true(rc == 0 || rc == -ENOMEM);
        lf_manifest_free(&m);
    }
}

static void session_ids_are_stable_and_injective(void **state)
{
    uint8_t h[LF_HASH_BYTES];
    lf_crypto_hash(h, "log bytes", 9);
    char a[33], b[33], c[33], d[33];
    lf_manifest_session_id(a, "acme", "logs/s1.log", 11, h);
    lf_manifest_session_id(b, "acme", "logs/s1.log", 11, h);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 32);
    /* moving a byte across the site/identity boundary changes the id */
    lf_manifest_session_id(c, "acmel", "ogs/s1.log", 10, h);
    assert_string_not_equal(a, c);
    lf_manifest_session_id(d, "acme", "logs/s2.log", 11, h);
    assert_string_not_equal(a, d);
    uint8_t h2[LF_HASH_BYTES];
    lf_crypto_hash(h2, "log bytez", 9);
    lf_manifest_session_id(d, "acme", "logs/s1.log", 11, h2);
    assert_string_not_equal(a, d);
    /* the documented encoding, computed by hand */
    lf_hash_ctx ctx;
    lf_crypto_hash_init(&ctx);
    const char *fields[3] = {"logferry.session-id.v1", "acme", "logs/s1.log"};
    for (int i = 0; i < 3; i++) {
        uint8_t len[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)strlen(fields[i])};
        lf_crypto_hash_update(&ctx, len, 8);
        lf_crypto_hash_update(&ctx, fields[i], strlen(fields[i]));
    }
    uint8_t len32[8] = {0, 0, 0, 0, 0, 0, 0, 32};
    lf_crypto_hash_update(&ctx, len32, 8);
    lf_crypto_hash_update(&ctx, h, 32);
    uint8_t out[LF_HASH_BYTES];
    lf_crypto_hash_final(&ctx, out);
    char hex[33];
    lf_crypto_hex_encode(hex, out, 16);
    assert_string_equal(a, hex);
}

static int append_chunk(void *ctx, const void *data, size_t len)
{
    return lf_buf_append(ctx, data, len);
}

/* Writes a session zip for log text with the given manifest, opens it and runs the full check. */
static int check_session(const char *log, const lf_manifest *m, char *err, size_t errsz,
                         const char *extra_entry)
{
    char dir[] = "/tmp/lf_manifest_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char logp[64], zp[64];
    snprintf(logp, sizeof logp, "%s/log", dir);
    snprintf(zp, sizeof zp, "%s/z.zip", dir);
    assert_int_equal(lf_write_file_atomic(logp, log, strlen(log), 0600), 0);
    lf_buf json = LF_BUF_INIT(LF_MANIFEST_MAX);
    assert_int_equal(lf_manifest_build(m, &json, err, errsz), 0);
    int lfd = open(logp, O_RDONLY), zfd = open(zp, O_RDWR | O_CREAT, 0600);
    lf_zip_error zerr;
    /* the manifest may be stored under another name to test its absence */
    assert_int_equal(lf_zip_write_session(zfd, extra_entry ? extra_entry : LF_MANIFEST_NAME,
                                          json.data, json.len, "session.log", lfd, strlen(log),
                                          NULL, 6, 0, &zerr),
                     0);
    lf_zip *z;
    assert_int_equal(lf_zip_open_fd(&z, zfd, NULL, &zerr), 0);
    lf_manifest got;
    lf_buf sink = LF_BUF_INIT(1 << 20);
    int rc = lf_manifest_check_archive(z, &got, append_chunk, &sink, err, errsz);
    if (rc == 0) {
        assert_string_equal(got.session_id, m->session_id);
        assert_string_equal(lf_buf_cstr(&sink), log);
        lf_manifest_free(&got);
    } else {
        assert_null(got.site);
    }
    lf_buf_free(&sink);
    lf_zip_close(z);
    close(lfd);
    close(zfd);
    unlink(logp);
    unlink(zp);
    rmdir(dir);
    lf_buf_free(&json);
    return rc;
}

static void archive_check_ties_manifest_to_log(void **state)
{
    const char *log = "2026-11-22 01:00:00 INFO [app] started\n2026-11-22 01:00:05 INFO [app] exit\n";
    uint8_t h[LF_HASH_BYTES];
    lf_crypto_hash(h, log, strlen(log));
    lf_manifest m;
    lf_manifest_init(&m);
    m.site = strdup("acme");
    m.product = strdup("Studio");
    m.product_version = strdup("4.2");
    m.log_type = strdup("classic");
    m.log_name = strdup("session.log");
    m.log_size = strlen(log);
    lf_crypto_hex_encode(m.log_blake2b, h, sizeof h);
    lf_manifest_session_id(m.session_id, m.site, "s.log", 5, h);
    char err[256];
    assert_int_equal(check_session(log, &m, err, sizeof err, NULL), 0);

    /* wrong size in the manifest */
    m.log_size++;
    assert_int_equal(check_session(log, &m, err, sizeof err, NULL), LF_ECORRUPT);
    assert_int_equal(strncmp(err, "log_size", 8), 0);
    m.log_size--;
    /* wrong hash */
    m.log_blake2b[0] = m.log_blake2b[0] == '0' ? '1' : '0';
    assert_int_equal(check_session(log, &m, err, sizeof err, NULL), LF_ECORRUPT);
    assert_int_equal(strncmp(err, "log_blake2b", 11), 0);
    lf_crypto_hex_encode(m.log_blake2b, h, sizeof h);
    /* the log is not where the manifest says */
    free(m.log_name);
    m.log_name = strdup("other.log");
    assert_int_equal(check_session(log, &m, err, sizeof err, NULL), LF_EFORMAT);
    assert_non_null(strstr(err, "session.log")); /* an unexpected entry */
    free(m.log_name);
    m.log_name = strdup("session.log");
    /* no manifest.json */
    assert_int_equal(check_session(log, &m, err, sizeof err, "meta.json"), LF_EFORMAT);
    assert_non_null(strstr(err, "manifest.json"));
    lf_manifest_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_and_full_manifests_parse),
        cmocka_unit_test(every_rule_is_enforced),
        cmocka_unit_test(build_refuses_invalid_structs),
        cmocka_unit_test(allocation_failures_are_clean),
        cmocka_unit_test(session_ids_are_stable_and_injective),
        cmocka_unit_test(archive_check_ties_manifest_to_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
