/* lf_config: every type, every error message (file:line: [section] key: reason), limits, quoting, the
 * dump round trip, overrides, reloads, repeated sections and allocation failures. */
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

#include "lf_config.h"
#include "lf_error.h"
#include "lf_failpoint.h"

struct watch {
    char *name;
    char *path;
    uint64_t interval_ms;
    bool follow;
};

struct test_config {
    char *top;
    char *listen;
    int64_t offset;
    uint64_t conns;
    bool verbose;
    double ratio;
    uint64_t body_max;
    uint64_t timeout_ms;
    int level;
    char **tags;
    char *token;
    char *must;
    char *even;
    struct watch *watches;
    size_t n_watches;
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static int validate_even_length(const void *field, lf_buf *err)
{
    const char *s = *(char *const *)field;
    if (s && strlen(s) % 2) {
        lf_buf_msgf(err, "length must be even");
        return -EINVAL;
    }
    return 0;
}

#define F(field) offsetof(struct test_config, field)
static const lf_config_option test_options[] = {
    {"", "top", LF_CFG_STRING, "t", F(top), .description = "Before any section."},
    {"http", "listen", LF_CFG_STRING, "127.0.0.1:8440", F(listen), .description = "Listen address."},
    {"http", "offset", LF_CFG_INT, "-5", F(offset), .min = -100, .max = 100, .flags = LF_CFG_RELOADABLE,
     .description = "Signed."},
    {"http", "max_connections", LF_CFG_UINT, "1024", F(conns), .min = 1, .max = 1000000,
     .flags = LF_CFG_RELOADABLE, .description = "Cap."},
    {"http", "verbose", LF_CFG_BOOL, "false", F(verbose), .flags = LF_CFG_RELOADABLE,
     .description = "Chatty."},
    {"http", "ratio", LF_CFG_DOUBLE, "0.5", F(ratio), .min = 0, .max = 1, .description = "Ratio."},
    {"http", "body_max", LF_CFG_SIZE, "256K", F(body_max), .min = 1024, .max = 1ULL << 30,
     .description = "Body."},
    {"http", "timeout", LF_CFG_DURATION, "30s", F(timeout_ms), .min = 100, .max = 86400000,
     .description = "Timeout."},
    {"log", "level", LF_CFG_ENUM, "info", F(level), .enum_values = levels, .flags = LF_CFG_RELOADABLE,
     .description = "Level."},
    {"log", "tags", LF_CFG_LIST, NULL, F(tags), .description = "Tags."},
    {"auth", "token", LF_CFG_STRING, NULL, F(token), .flags = LF_CFG_SECRET, .description = "Token."},
    {"auth", "must", LF_CFG_STRING, "documented", F(must), .flags = LF_CFG_REQUIRED,
     .description = "Required."},
    {"auth", "even", LF_CFG_STRING, "ab", F(even), .validate = validate_even_length,
     .description = "Validated."},
};
#undef F

#define W(field) offsetof(struct watch, field)
static const lf_config_option watch_options[] = {
    {"watch", "path", LF_CFG_STRING, NULL, W(path), .flags = LF_CFG_REQUIRED, .description = "Glob."},
    {"watch", "interval", LF_CFG_DURATION, "1s", W(interval_ms), .min = 10, .max = 3600000,
     .flags = LF_CFG_RELOADABLE, .description = "Poll."},
    {"watch", "follow", LF_CFG_BOOL, "yes", W(follow), .flags = LF_CFG_RELOADABLE,
     .description = "Follow."},
};
#undef W

static const lf_config_section_table test_sections[] = {
    {"watch", watch_options, sizeof watch_options / sizeof watch_options[0], sizeof(struct watch),
     offsetof(struct watch, name), offsetof(struct test_config, watches),
     offsetof(struct test_config, n_watches), 3, "Watched directories."},
};

static const lf_config_table test_table = {
    "logferry-test", "/nonexistent/test.conf", test_options, sizeof test_options / sizeof test_options[0],
    test_sections, 1, sizeof(struct test_config), "A test program.",
};


/* Loads text into a fresh config; returns the code, err holds the message. */
static int load_text(struct test_config *c, const char *text, lf_buf *err)
{
    memset(c, 0, sizeof *c);
    return lf_config_load_string(&test_table, c, text, "test.conf", err);
}

static void expect_error(const char *text, const char *message)
{
    struct test_config c;
    lf_buf err = LF_BUF_INIT(4096);
    int rc = load_text(&c, text, &err);
    if (rc == 0 || strcmp(lf_buf_cstr(&err), message) != 0)
        fail_msg("for %s\nexpected error \"%s\"\n     got %d \"%s\"", text, message, rc, lf_buf_cstr(&err));
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static void defaults(void **state)
{
    struct test_config c;
    memset(&c, 0, sizeof c);
    lf_buf err = LF_BUF_INIT(1024);
    assert_int_equal(lf_config_defaults(&test_table, &c, &err), 0);
    assert_string_equal(c.top, "t");
    assert_string_equal(c.listen, "127.0.0.1:8440");
    assert_int_equal(c.offset, -5);
    assert_int_equal(c.conns, 1024);
    assert_false(c.verbose);
    assert_true(c.ratio == 0.5);
    assert_int_equal(c.body_max, 256 * 1024);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.level, 1);
    assert_null(c.tags);
    assert_null(c.token);
    assert_null(c.must); /* REQUIRED: the default is only documentation */
    assert_string_equal(c.even, "ab");
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static void every_type(void **state)
{
    struct test_config c;
    lf_buf err = LF_BUF_INIT(1024);
    const char *text = "\xEF\xBB\xBF; comment\n"
                       "# another comment\n"
                       "top = first\n"
                       "[http]\n"
                       "  listen = 0.0.0.0:9000   ; inline comment\n"
                       "offset=-100\n"
                       "max_connections = 1000000\n"
                       "verbose = ON\n"
                       "ratio = 1e-1\n"
                       "body_max = 16MiB\n"
                       "timeout = 250ms\n"
                       "[log]\r\n"
                       "level = WARN\r\n"
                       "tags = a, b ,c\n"
                       "[auth]\n"
                       "token = s3cret\n"
                       "must = \"quoted \\\"value\\\" \\x3b\\t\"\n"
                       "even = abcd\n";
    assert_int_equal(load_text(&c, text, &err), 0);
    assert_string_equal(c.top, "first");
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_int_equal(c.offset, -100);
    assert_int_equal(c.conns, 1000000);
    assert_true(c.verbose);
    assert_true(c.ratio == 0.1);
    assert_int_equal(c.body_max, 16 << 20);
    assert_int_equal(c.timeout_ms, 250);
    assert_int_equal(c.level, 2);
    assert_non_null(c.tags);
    assert_string_equal(c.tags[0], "a");
    assert_string_equal(c.tags[1], "b");
    assert_string_equal(c.tags[2], "c");
    assert_null(c.tags[3]);
    assert_string_equal(c.token, "s3cret");
    assert_string_equal(c.must, "quoted \"value\" ;\t");
    assert_string_equal(c.even, "abcd");
    lf_config_free(&test_table, &c);
    /* inside quotes " ;" is text; after them it starts a comment */
    assert_int_equal(load_text(&c, "[auth]\nmust = \"a ; b # c\"  ; comment\n", &err), 0);
    assert_string_equal(c.must, "a ; b # c");
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static void value_parsers(void **state)
{
    uint64_t v;
    assert_int_equal(lf_config_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(lf_config_parse_size("64K", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(lf_config_parse_size("64 KiB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(lf_config_parse_size("16MiB", &v), 0);
    assert_int_equal(v, 16 << 20);
    assert_int_equal(lf_config_parse_size("2g", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(lf_config_parse_size("3TB", &v), 0);
    assert_int_equal(v, 3ULL << 40);
    assert_int_equal(lf_config_parse_size("10B", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(lf_config_parse_size("12X", &v), -EINVAL);
    assert_int_equal(lf_config_parse_size("-1", &v), -EINVAL);
    assert_int_equal(lf_config_parse_size("", &v), -EINVAL);
    assert_int_equal(lf_config_parse_size("K", &v), -EINVAL);
    assert_int_equal(lf_config_parse_size("1.5G", &v), -EINVAL);
    assert_int_equal(lf_config_parse_size("99999999999999999999", &v), -ERANGE);
    assert_int_equal(lf_config_parse_size("16777216T", &v), -ERANGE);

    assert_int_equal(lf_config_parse_duration("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(lf_config_parse_duration("30s", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(lf_config_parse_duration("5m", &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(lf_config_parse_duration("2h", &v), 0);
    assert_int_equal(v, 7200000);
    assert_int_equal(lf_config_parse_duration("7d", &v), 0);
    assert_int_equal(v, 7ULL * 86400000);
    assert_int_equal(lf_config_parse_duration("10", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(lf_config_parse_duration("5y", &v), -EINVAL);
    assert_int_equal(lf_config_parse_duration("5S", &v), -EINVAL);
    assert_int_equal(lf_config_parse_duration("ms", &v), -EINVAL);
    assert_int_equal(lf_config_parse_duration("18446744073709551615d", &v), -ERANGE);

    bool b;
    const char *yes[] = {"true", "YES", "on", "1"}, *no[] = {"false", "No", "OFF", "0"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lf_config_parse_bool(yes[i], &b), 0);
        assert_true(b);
        assert_int_equal(lf_config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(lf_config_parse_bool("2", &b), -EINVAL);
    assert_int_equal(lf_config_parse_bool("", &b), -EINVAL);
}

static void error_messages(void **state)
{
    expect_error("[auth]\nmust = x\n[nope]\nkey = 1\n", "test.conf:3: [nope]: unknown section");
    expect_error("[auth]\nmust = x\n[http]\nlisten = a\nlisten2 = b\n",
                 "test.conf:5: [http] listen2: unknown key");
    expect_error("[auth]\nmust = x\n[http]\noffset = 12abc\n",
                 "test.conf:4: [http] offset: \"12abc\" is not an integer");
    expect_error("[auth]\nmust = x\n[http]\noffset = 101\n",
                 "test.conf:4: [http] offset: must be between -100 and 100");
    expect_error("[auth]\nmust = x\n[http]\noffset = 99999999999999999999\n",
                 "test.conf:4: [http] offset: \"99999999999999999999\" is out of range");
    expect_error("[auth]\nmust = x\n[http]\nmax_connections = 0\n",
                 "test.conf:4: [http] max_connections: must be between 1 and 1000000");
    expect_error("[auth]\nmust = x\n[http]\nmax_connections = -1\n",
                 "test.conf:4: [http] max_connections: \"-1\" is not an unsigned integer");
    expect_error("[auth]\nmust = x\n[http]\nverbose = maybe\n",
                 "test.conf:4: [http] verbose: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)");
    expect_error("[auth]\nmust = x\n[http]\nratio = 1.5\n", "test.conf:4: [http] ratio: must be between 0 and 1");
    expect_error("[auth]\nmust = x\n[http]\nratio = nan\n",
                 "test.conf:4: [http] ratio: \"nan\" is not a finite number");
    expect_error("[auth]\nmust = x\n[http]\nbody_max = 2G\n",
                 "test.conf:4: [http] body_max: must be between 1K and 1G");
    expect_error("[auth]\nmust = x\n[http]\nbody_max = 12 bytes\n",
                 "test.conf:4: [http] body_max: \"12 bytes\" is not a size (e.g. 512, 64K, 16MiB, 2G)");
    expect_error("[auth]\nmust = x\n[http]\ntimeout = 50ms\n",
                 "test.conf:4: [http] timeout: must be between 100ms and 1d");
    expect_error("[auth]\nmust = x\n[http]\ntimeout = soon\n",
                 "test.conf:4: [http] timeout: \"soon\" is not a duration (e.g. 250ms, 30s, 5m, 2h, 7d)");
    expect_error("[auth]\nmust = x\n[log]\nlevel = loud\n",
                 "test.conf:4: [log] level: \"loud\" is not one of: debug, info, warn, error");
    expect_error("[auth]\nmust = x\n[log]\ntags = a,,b\n", "test.conf:4: [log] tags: item 2 of the list is empty");
    expect_error("[auth]\nmust = x\n[auth]\nmust = y\n", "test.conf:4: [auth] must: set twice (first on line 2)");
    expect_error("[auth]\nmust = x\nthis line has no equals sign\n",
                 "test.conf:3: syntax error: expected 'key = value' or '[section]'");
    expect_error("[auth\nmust = x\n", "test.conf:1: syntax error: section header without ']'");
    expect_error("[auth] x\nmust = x\n", "test.conf:1: [auth]: syntax error: text after ']'");
    expect_error("[http]\nlisten = a\n", "test.conf: [auth] must: required, but not set");
    expect_error("[auth]\nmust = x\ntoken = (secret)\n",
                 "test.conf:3: [auth] token: \"(secret)\" is the mask --dump-config prints; put the real "
                 "secret here");
    expect_error("[auth]\nmust = \"unterminated\n",
                 "test.conf:2: [auth] must: bad quoted value (escapes: \\\" \\\\ \\n \\t \\r \\xHH)");
    expect_error("[auth]\nmust = \"bad \\q escape\"\n",
                 "test.conf:2: [auth] must: bad quoted value (escapes: \\\" \\\\ \\n \\t \\r \\xHH)");
    expect_error("[auth]\nmust = \"nul \\x00\"\n",
                 "test.conf:2: [auth] must: bad quoted value (escapes: \\\" \\\\ \\n \\t \\r \\xHH)");
    expect_error("[auth]\nmust = \"a\" b\n",
                 "test.conf:2: [auth] must: bad quoted value (escapes: \\\" \\\\ \\n \\t \\r \\xHH)");
    expect_error("[auth]\nmust = x\neven = abc\n", "test.conf:3: [auth] even: length must be even");
    expect_error("[auth]\nmust = x\n[watch.a]\npath = /a\nbogus = 1\n", "test.conf:5: [watch.a] bogus: unknown key");
    expect_error("[auth]\nmust = x\n[watch.a]\ninterval = 1ms\n",
                 "test.conf:4: [watch.a] interval: must be between 10ms and 1h");
    expect_error("[auth]\nmust = x\n[watch.a]\n", "test.conf: [watch.a] path: required, but not set");
    expect_error("[auth]\nmust = x\n[watch.]\n", "test.conf:3: [watch.]: a [watch.NAME] section needs a name");
    expect_error("[auth]\nmust = x\n[watch.a b]\n",
                 "test.conf:3: [watch.a b]: section name \"a b\" may only hold letters, digits, '_', '-' and '.'");
    expect_error("[auth]\nmust = x\n[watch.a]\npath=1\n[watch.b]\npath=2\n[watch.c]\npath=3\n[watch.d]\n",
                 "test.conf:9: [watch.d]: too many [watch.*] sections (at most 3)");
    expect_error("[auth]\nmust = x\n[watch.a]\npath=1\n[http]\n[watch.a]\npath=2\n",
                 "test.conf:7: [watch.a] path: set twice (first on line 4)");

    /* a key before any section when the table has no "" options of that name */
    expect_error("nope = 1\n[auth]\nmust = x\n", "test.conf:1: [] nope: unknown key");

    /* NUL byte inside the text (not through load_string, which stops at NUL) */
    char path[] = "/tmp/lfcfgXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[auth]\nmust = a\0b\n", 18), 18);
    close(fd);
    struct test_config c;
    memset(&c, 0, sizeof c);
    lf_buf err = LF_BUF_INIT(1024);
    assert_int_equal(lf_config_load(&test_table, &c, path, &err), LF_ECONFIG);
    char want[128];
    snprintf(want, sizeof want, "%s:2: NUL byte in line", path);
    assert_string_equal(lf_buf_cstr(&err), want);
    lf_config_free(&test_table, &c);
    unlink(path);

    /* a missing file */
    memset(&c, 0, sizeof c);
    assert_int_equal(lf_config_load(&test_table, &c, "/nonexistent/x.conf", &err), -ENOENT);
    assert_string_equal(lf_buf_cstr(&err), "/nonexistent/x.conf: No such file or directory");
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static void long_lines(void **state)
{
    /* longer than inih's line buffer: carried past it */
    char text[2048], value[1500];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    snprintf(text, sizeof text, "[auth]\nmust = %s   ; comment\n[http]\nlisten = x\n", value);
    struct test_config c;
    lf_buf err = LF_BUF_INIT(1024);
    assert_int_equal(load_text(&c, text, &err), 0);
    assert_string_equal(c.must, value);
    assert_string_equal(c.listen, "x");
    lf_config_free(&test_table, &c);

    /* "key: value" as inih allows it, long or quoted */
    snprintf(text, sizeof text, "[auth]\nmust: %s=x\n[http]\nlisten: \"a ; b\"\n", value);
    assert_int_equal(load_text(&c, text, &err), 0);
    assert_int_equal(strlen(c.must), strlen(value) + 2);
    assert_string_equal(c.listen, "a ; b");
    lf_config_free(&test_table, &c);

    /* a long comment line is ignored, a long line without '=' is a syntax error */
    snprintf(text, sizeof text, "# %s\n[auth]\nmust = x\n", value);
    assert_int_equal(load_text(&c, text, &err), 0);
    lf_config_free(&test_table, &c);
    snprintf(text, sizeof text, "[auth]\nmust = x\n%s\n", value);
    assert_int_equal(load_text(&c, text, &err), LF_ECONFIG);
    assert_non_null(strstr(lf_buf_cstr(&err), "test.conf:3: [auth]: syntax error: line of 1499 bytes"));
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static char *dump_to_string(const struct test_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(lf_config_dump(&test_table, c, f), 0);
    fclose(f);
    return text;
}

static void dump_round_trip(void **state)
{
    struct test_config a, b;
    lf_buf err = LF_BUF_INIT(1024);
    const char *text = "[http]\nlisten = \"  spaced ; # \\\\ \\\"q\\\" \\n\"\nratio = 0.3\n"
                       "body_max = 1536\ntimeout = 90s\noffset = 7\n"
                       "[log]\ntags = x y, #z\nlevel = error\n[auth]\nmust = \"\"\neven = \"\"\n"
                       "[watch.logs]\npath = /var/log/*.log\ninterval = 1500ms\nfollow = off\n"
                       "[watch.more]\npath = /srv\n";
    if (load_text(&a, text, &err) != 0)
        fail_msg("%s", lf_buf_cstr(&err));
    char *d1 = dump_to_string(&a);
    assert_int_equal(load_text(&b, d1, &err), 0);
    char *d2 = dump_to_string(&b);
    assert_string_equal(d1, d2);
    assert_string_equal(a.listen, b.listen);
    assert_string_equal(b.listen, "  spaced ; # \\ \"q\" \n");
    assert_true(b.ratio == 0.3);
    assert_int_equal(b.body_max, 1536);
    assert_int_equal(b.timeout_ms, 90000);
    assert_string_equal(b.tags[0], "x y");
    assert_string_equal(b.tags[1], "#z");
    assert_string_equal(b.must, "");
    assert_int_equal(b.n_watches, 2);
    assert_string_equal(b.watches[0].name, "logs");
    assert_int_equal(b.watches[0].interval_ms, 1500);
    assert_false(b.watches[0].follow);
    assert_string_equal(b.watches[1].path, "/srv");
    assert_true(b.watches[1].follow);
    /* exact text of a few lines */
    assert_non_null(strstr(d1, "\n[http]\nlisten = \"  spaced \\x3b \\x23 \\\\ \\\"q\\\" \\n\"\n"));
    assert_non_null(strstr(d1, "body_max = 1536\ntimeout = 90s\n"));
    assert_non_null(strstr(d1, "# token = (unset)\n"));
    assert_non_null(strstr(d1, "\n[watch.logs]\npath = /var/log/*.log\ninterval = 1500ms\nfollow = false\n"));
    assert_true(strncmp(d1, "# logferry-test: effective configuration\ntop = t\n", 49) == 0);
    free(d1);
    free(d2);
    lf_config_free(&test_table, &a);
    lf_config_free(&test_table, &b);

    /* a secret is masked, and the masked dump is refused rather than loaded with the mask */
    assert_int_equal(load_text(&a, "[auth]\nmust = m\ntoken = hunter2\n", &err), 0);
    d1 = dump_to_string(&a);
    assert_null(strstr(d1, "hunter2"));
    assert_non_null(strstr(d1, "token = (secret)\n"));
    assert_int_equal(load_text(&b, d1, &err), LF_ECONFIG);
    assert_non_null(strstr(lf_buf_cstr(&err), "[auth] token: \"(secret)\" is the mask"));
    free(d1);
    lf_config_free(&test_table, &a);
    lf_config_free(&test_table, &b);
    lf_buf_free(&err);
}

static void overrides(void **state)
{
    struct test_config c;
    memset(&c, 0, sizeof c);
    lf_buf err = LF_BUF_INIT(1024);
    const char *sets[] = {"auth.must=from-cli", "http.max_connections=5", "watch.x.path=/x",
                          "watch.x.interval=2s"};
    assert_int_equal(lf_config_load_overrides(&test_table, &c, NULL, sets, 4, &err), 0);
    assert_string_equal(c.must, "from-cli");
    assert_int_equal(c.conns, 5);
    assert_int_equal(c.n_watches, 1);
    assert_string_equal(c.watches[0].name, "x");
    assert_int_equal(c.watches[0].interval_ms, 2000);
    assert_int_equal(lf_config_set(&test_table, &c, "http", "listen", "[::1]:1", &err), 0);
    assert_string_equal(c.listen, "[::1]:1");
    assert_int_equal(lf_config_set(&test_table, &c, "http", "max_connections", "0", &err), LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "--set: [http] max_connections: must be between 1 and 1000000");
    assert_int_equal(c.conns, 5); /* unchanged */
    assert_int_equal(lf_config_set(&test_table, &c, "nope", "x", "1", &err), LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "--set: [nope]: unknown section");
    lf_config_free(&test_table, &c);

    const char *bad[] = {"auth.must=x", "novalue"};
    memset(&c, 0, sizeof c);
    assert_int_equal(lf_config_load_overrides(&test_table, &c, NULL, bad, 2, &err), LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "--set: \"novalue\": expected section.key=value");
    lf_config_free(&test_table, &c);
    lf_buf_free(&err);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/lfcfgXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void reload(void **state)
{
    char *path = write_temp("[auth]\nmust = a\n[http]\nlisten = one\nmax_connections = 10\n"
                            "[watch.w]\npath = /w\n");
    struct test_config c;
    memset(&c, 0, sizeof c);
    lf_buf err = LF_BUF_INIT(1024), restart = LF_BUF_INIT(1024), changed = LF_BUF_INIT(1024);
    const char *sets[] = {"http.offset=3"};
    assert_int_equal(lf_config_load_overrides(&test_table, &c, path, sets, 1, &err), 0);
    FILE *f = fopen(path, "w");
    fputs("[auth]\nmust = b\n[http]\nlisten = two\nmax_connections = 20\nverbose = yes\n"
          "[log]\nlevel = debug\n[watch.w]\npath = /w\ninterval = 5s\n",
          f);
    fclose(f);
    assert_int_equal(
        lf_config_reload_overrides(&test_table, &c, path, sets, 1, &changed, &restart, &err), 0);
    assert_string_equal(lf_buf_cstr(&changed), "[http] max_connections, [http] verbose, [log] level, [watch.*]");
    assert_string_equal(lf_buf_cstr(&restart), "[http] listen, [auth] must");
    assert_int_equal(c.conns, 20);
    assert_true(c.verbose);
    assert_int_equal(c.level, 0);
    assert_int_equal(c.offset, 3); /* the override is still applied */
    assert_string_equal(c.listen, "one");
    assert_string_equal(c.must, "a");
    assert_int_equal(c.watches[0].interval_ms, 5000);

    /* a bad file leaves everything as it was */
    f = fopen(path, "w");
    fputs("[auth]\nmust = b\n[http]\nmax_connections = 0\n", f);
    fclose(f);
    lf_buf_reset(&changed);
    lf_buf_reset(&restart);
    assert_int_equal(lf_config_reload(&test_table, &c, path, &restart, &err), LF_ECONFIG);
    char want[256];
    snprintf(want, sizeof want, "%s:4: [http] max_connections: must be between 1 and 1000000", path);
    assert_string_equal(lf_buf_cstr(&err), want);
    assert_int_equal(c.conns, 20);
    assert_int_equal(restart.len, 0);

    /* a repeated section whose options are not all reloadable needs a restart */
    f = fopen(path, "w");
    fputs("[auth]\nmust = a\n[http]\nlisten = one\nmax_connections = 20\nverbose = yes\n"
          "[log]\nlevel = debug\n[watch.w]\npath = /other\ninterval = 5s\n",
          f);
    fclose(f);
    assert_int_equal(lf_config_reload_overrides(&test_table, &c, path, sets, 1, &changed, &restart, &err), 0);
    assert_string_equal(lf_buf_cstr(&restart), "[watch.*]");
    assert_string_equal(lf_buf_cstr(&changed), "");
    assert_string_equal(c.watches[0].path, "/w");
    lf_config_free(&test_table, &c);
    unlink(path);
    free(path);
    lf_buf_free(&err);
    lf_buf_free(&restart);
    lf_buf_free(&changed);
}

static void allocation_failures(void **state)
{
    const char *text = "[auth]\nmust = m\ntoken = t\n[log]\ntags = a, b, c\n"
                       "[watch.a]\npath = /a\n[watch.b]\npath = /b\n";
    int failures = 0;
    for (uint64_t nth = 1; nth < 500; nth++) {
        struct test_config c;
        memset(&c, 0, sizeof c);
        lf_buf err = LF_BUF_INIT(1024);
        lf_fail_arm(LF_FAIL_ALLOC, nth, false);
        int rc = lf_config_load_string(&test_table, &c, text, "t", &err);
        bool hit = lf_fail_calls(LF_FAIL_ALLOC) >= nth;
        lf_fail_disarm(LF_FAIL_ALLOC);
        if (hit) {
            if (rc == 0)
                fail_msg("allocation %d failed but the load succeeded", (int)nth);
            failures++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.n_watches, 2);
            lf_config_free(&test_table, &c);
            lf_buf_free(&err);
            assert_true(failures > 10);
            return;
        }
        lf_config_free(&test_table, &c); /* leaks show up under ASan */
        lf_buf_free(&err);
    }
    fail_msg("load never succeeded");
}

static void markdown(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const lf_config_table *tables[] = {&test_table};
    assert_int_equal(lf_config_write_markdown(tables, 1, f), 0);
    fclose(f);
    assert_non_null(strstr(text, "\n## logferry-test\n\nA test program.\n\nDefault file: `/nonexistent/test.conf`\n"));
    assert_non_null(strstr(text, "\n### `[http]`\n\n| key | type | default | reload | description |\n"));
    assert_non_null(strstr(text, "| `max_connections` | unsigned integer (1 to 1000000) | `1024` | SIGHUP | Cap. |\n"));
    assert_non_null(strstr(text, "| `level` | enum: `debug`, `info`, `warn`, `error` | `info` | SIGHUP | Level. |\n"));
    assert_non_null(strstr(text, "| `must` | string | **required** | restart | Required. |\n"));
    assert_non_null(strstr(text, "| `token` | string | unset | restart | Token. Secret: masked in `--dump-config`. |\n"));
    assert_non_null(strstr(text, "| `body_max` | size (1K to 1G) | `256K` | restart | Body. |\n"));
    assert_non_null(strstr(text, "\n### `[watch.NAME]` (repeated, up to 3)\n\nWatched directories.\n"));
    free(text);
}

static void find_and_format(void **state)
{
    struct test_config c;
    memset(&c, 0, sizeof c);
    assert_int_equal(lf_config_defaults(&test_table, &c, NULL), 0);
    const lf_config_option *o = lf_config_find(&test_table, "http", "timeout");
    assert_non_null(o);
    lf_buf b = LF_BUF_INIT(100);
    assert_int_equal(lf_config_format_value(o, &c, &b), 0);
    assert_string_equal(lf_buf_cstr(&b), "30s");
    assert_null(lf_config_find(&test_table, "http", "nope"));
    lf_buf_free(&b);
    lf_config_free(&test_table, &c);
}

/* Free-form repeated sections: keys checked by a callback, repeatable, kept in order, dumped back. */
struct lt {
    char *name;
    bool enabled;
    char **pairs;
};
struct ff_config {
    struct lt *types;
    size_t n_types;
};

static int check_lt_key(const void *field, lf_buf *err)
{
    const char *const *pair = field;
    if (strcmp(pair[0], "format") != 0 && strcmp(pair[0], "mask") != 0) {
        lf_buf_msgf(err, "not a log type key (value %s)", pair[1]);
        return -EINVAL;
    }
    return 0;
}

static const lf_config_option lt_options[] = {
    {"logtype", "enabled", LF_CFG_BOOL, "true", offsetof(struct lt, enabled), .description = "On."},
    {"logtype", LF_CFG_ANY_KEY, LF_CFG_LIST, NULL, offsetof(struct lt, pairs), .validate = check_lt_key,
     .description = "Read by the log type loader."},
};
static const lf_config_section_table ff_sections[] = {
    {"logtype", lt_options, 2, sizeof(struct lt), offsetof(struct lt, name), offsetof(struct ff_config, types),
     offsetof(struct ff_config, n_types), 8, "Log types."},
};
static const lf_config_table ff_table = {"ff", NULL, NULL, 0, ff_sections, 1, sizeof(struct ff_config), NULL};

static void free_form_sections(void **state)
{
    struct ff_config a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    lf_buf err = LF_BUF_INIT(1024);
    const char *text = "[logtype.hdfs]\nformat = <Date> <Content>\nmask = blk_-?\\d+\nmask = a;b\n"
                       "enabled = no\n[logtype.app]\n";
    assert_int_equal(lf_config_load_string(&ff_table, &a, text, "ff.conf", &err), 0);
    assert_int_equal(a.n_types, 2);
    assert_false(a.types[0].enabled);
    assert_string_equal(a.types[0].pairs[0], "format");
    assert_string_equal(a.types[0].pairs[1], "<Date> <Content>");
    assert_string_equal(a.types[0].pairs[3], "blk_-?\\d+");
    assert_string_equal(a.types[0].pairs[5], "a;b");
    assert_null(a.types[0].pairs[6]);
    assert_null(a.types[1].pairs);
    char *dump = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dump, &len);
    assert_int_equal(lf_config_dump(&ff_table, &a, f), 0);
    fclose(f);
    assert_non_null(strstr(dump, "[logtype.hdfs]\nenabled = false\nformat = <Date> <Content>\n"
                                 "mask = \"blk_-?\\\\d+\"\nmask = \"a\\x3bb\"\n"));
    assert_int_equal(lf_config_load_string(&ff_table, &b, dump, "dump", &err), 0);
    assert_string_equal(b.types[0].pairs[3], "blk_-?\\d+");
    assert_string_equal(b.types[0].pairs[5], "a;b");
    free(dump);
    lf_config_free(&ff_table, &b);
    memset(&b, 0, sizeof b);
    assert_int_equal(lf_config_load_string(&ff_table, &b, "[logtype.x]\nfromat = 1\n", "ff.conf", &err),
                     LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "ff.conf:2: [logtype.x] fromat: not a log type key (value 1)");
    lf_config_free(&ff_table, &b);
    memset(&b, 0, sizeof b);
    assert_int_equal(lf_config_load_string(&ff_table, &b, "[logtype.x]\nfor mat = 1\n", "ff.conf", &err),
                     LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err),
                        "ff.conf:2: [logtype.x] for mat: a key may only hold letters, digits, '_', '-' and '.'");
    lf_config_free(&ff_table, &b);
    memset(&b, 0, sizeof b);
    /* a line starting with a carriage return is not a continuation of the line before */
    assert_int_equal(lf_config_load_string(&ff_table, &b, "[logtype.x]\nformat = a\n\r\rmore\n", "ff.conf", &err),
                     LF_ECONFIG);
    assert_string_equal(lf_buf_cstr(&err), "ff.conf:3: syntax error: expected 'key = value' or '[section]'");
    lf_config_free(&ff_table, &a);
    lf_config_free(&ff_table, &b);
    lf_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),       cmocka_unit_test(every_type),
        cmocka_unit_test(value_parsers),  cmocka_unit_test(error_messages),
        cmocka_unit_test(long_lines),     cmocka_unit_test(dump_round_trip),
        cmocka_unit_test(overrides),      cmocka_unit_test(reload),
        cmocka_unit_test(allocation_failures), cmocka_unit_test(markdown),
        cmocka_unit_test(find_and_format), cmocka_unit_test(free_form_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
