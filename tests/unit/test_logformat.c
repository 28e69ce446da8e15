/* Line formats (Loghub notation): fields, lazy matching, whitespace runs, escaped punctuation,
 * optional groups through the regex path, and the literal scanner agreeing with PCRE2. Timestamps
 * and parameter extraction ride along, as they are part of turning a line into an event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lf_error.h"
#include "logformat.h"
#include "parse_hash.h"
#include "scan_space.h"
#include "template_params.h"
#include "timefmt.h"

static lf_logformat *compile_ok(const char *fmt)
{
    lf_logformat *f = NULL;
    char err[256] = "";
    int rc = lf_logformat_compile(fmt, &f, err, sizeof err);
    if (rc != 0)
        fail_msg("compile %s: %s", fmt, err);
    return f;
}

static void assert_field(const char *line, const lf_span *sp, const char *want)
{
    char got[512];
    snprintf(got, sizeof got, "%.*s", (int)sp->len, line + sp->off);
    assert_string_equal(got, want);
}

/* Both matchers must agree on every line. */
static int match_both(lf_logformat *f, const char *line, lf_span *sp)
{
    lf_span rx[LF_LOGFORMAT_MAX_FIELDS];
    int a = lf_logformat_match(f, line, strlen(line), sp);
    int b = lf_logformat_match_regex(f, line, strlen(line), rx);
    assert_int_equal(a, b);
    if (a == 1)
        for (int i = 0; i < lf_logformat_field_count(f); i++) {
            assert_int_equal(sp[i].off, rx[i].off);
            assert_int_equal(sp[i].len, rx[i].len);
        }
    return a;
}

static void hdfs_format(void **state)
{
    lf_logformat *f = compile_ok("<Date> <Time> <Pid> <Level> <Component>: <Content>");
    assert_true(lf_logformat_is_literal(f));
    assert_int_equal(lf_logformat_field_count(f), 6);
    assert_string_equal(lf_logformat_field_name(f, 4), "Component");
    assert_int_equal(lf_logformat_field_index(f, "Content"), 5);
    assert_int_equal(lf_logformat_field_index(f, "Nope"), -1);
    lf_span sp[LF_LOGFORMAT_MAX_FIELDS];
    const char *l = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block: x terminating";
    assert_int_equal(match_both(f, l, sp), 1);
    assert_field(l, &sp[0], "081109");
    assert_field(l, &sp[2], "148");
    assert_field(l, &sp[4], "dfs.DataNode$PacketResponder");
    assert_field(l, &sp[5], "PacketResponder 1 for block: x terminating");
    /* a run of spaces in the format matches any whitespace run; the lazy field stops at the first */
    const char *l2 = "081109\t203615  148 INFO a b: c";
    assert_int_equal(match_both(f, l2, sp), 1);
    assert_field(l2, &sp[1], "203615");
    assert_field(l2, &sp[4], "a b");
    /* a line without ": " does not match */
    assert_int_equal(match_both(f, "081109 203615 148 INFO no colon here", sp), 0);
    assert_int_equal(match_both(f, "", sp), 0);
    lf_logformat_free(f);
}

static void escaped_brackets_and_pipes(void **state)
{
    lf_logformat *f = compile_ok("\\[<Time>\\] \\[<Level>\\] <Content>");
    assert_true(lf_logformat_is_literal(f));
    lf_span sp[LF_LOGFORMAT_MAX_FIELDS];
    const char *l = "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties";
    assert_int_equal(match_both(f, l, sp), 1);
    assert_field(l, &sp[0], "Sun Dec 04 04:47:44 2005");
    assert_field(l, &sp[1], "notice");
    assert_int_equal(match_both(f, "Sun Dec 04 [notice] x", sp), 0);
    lf_logformat_free(f);

    f = compile_ok("<Time>\\|<Component>\\|<Pid>\\|<Content>");
    const char *h = "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579|tail";
    assert_int_equal(match_both(f, h, sp), 1);
    assert_field(h, &sp[1], "Step_LSC");
    assert_field(h, &sp[3], "onStandStepChanged 3579|tail");
    lf_logformat_free(f);

    /* Zookeeper: two spaces and a field glued to literals */
    f = compile_ok("<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>");
    const char *z = "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
                    "Notification time out: 3200";
    assert_int_equal(match_both(f, z, sp), 1);
    assert_field(z, &sp[3], "QuorumPeer[myid=1]/0");
    assert_field(z, &sp[4], "0:0:0:0:0:0:0:2181:FastLeaderElection");
    assert_field(z, &sp[5], "774");
    assert_field(z, &sp[6], "Notification time out: 3200");
    lf_logformat_free(f);
}

/* Both ways give the same answer for a line. */
static void same_as_regex(lf_logformat *f, const char *line)
{
    lf_span a[LF_LOGFORMAT_MAX_FIELDS], b[LF_LOGFORMAT_MAX_FIELDS];
    int m = lf_logformat_match(f, line, strlen(line), a);
    assert_int_equal(m, lf_logformat_match_regex(f, line, strlen(line), b));
    for (int i = 0; m == 1 && i < lf_logformat_field_count(f); i++) {
        assert_int_equal(a[i].set, b[i].set);
        assert_int_equal(a[i].off, b[i].off);
        assert_int_equal(a[i].len, b[i].len);
    }
}

enum decider { FIRST_PATH, SEARCH, REGEX, UNMATCHED };

/* Matches the line and checks which of the format's ways decided it (lf_logformat_counts): each
 * way gives the regex's answer, so only the counts tell a broken first path or search apart. */
static void decided_by(lf_logformat *f, const char *line, enum decider want)
{
    lf_logformat_counts a, b;
    lf_span sp[LF_LOGFORMAT_MAX_FIELDS];
    lf_logformat_get_counts(f, &a);
    int m = lf_logformat_match(f, line, strlen(line), sp);
    lf_logformat_get_counts(f, &b);
    assert_int_equal(m, want == UNMATCHED ? 0 : 1);
    assert_int_equal(b.first_path - a.first_path, want == FIRST_PATH);
    assert_int_equal(b.search - a.search, want == SEARCH);
    assert_int_equal(b.regex - a.regex, want == REGEX || want == UNMATCHED);
    assert_int_equal(b.unmatched - a.unmatched, want == UNMATCHED);
}

static void optional_group_scanned(void **state)
{
    /* an optional group of plain text and fields is the scanner's too */
    lf_logformat *f = compile_ok("<Month> <Day> <Time> <Host> <Proc>(\\[<PID>\\])?: <Content>");
    assert_true(lf_logformat_is_literal(f));
    lf_span sp[LF_LOGFORMAT_MAX_FIELDS];
    const char *a = "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure";
    assert_int_equal(lf_logformat_match(f, a, strlen(a), sp), 1);
    assert_field(a, &sp[4], "sshd(pam_unix)");
    assert_true(sp[5].set);
    assert_field(a, &sp[5], "19939");
    same_as_regex(f, a);
    decided_by(f, a, FIRST_PATH);
    const char *b = "Jun 14 15:16:01 combo kernel: something";
    assert_int_equal(lf_logformat_match(f, b, strlen(b), sp), 1);
    assert_field(b, &sp[4], "kernel");
    assert_false(sp[5].set);
    assert_int_equal(sp[5].len, 0);
    same_as_regex(f, b);
    decided_by(f, b, FIRST_PATH); /* the group skipped at its first literal */
    decided_by(f, "not a line", UNMATCHED);
    /* the group is tried first, then skipped: "[1]: x" is taken by the group where it can be */
    same_as_regex(f, "Jun 14 15:16:01 combo p[1]: x[2]: y");
    same_as_regex(f, "Jun 14 15:16:01 combo p[1]x: y");
    same_as_regex(f, "Jun 14 15:16:01 combo p: [1]: y");
    lf_logformat_free(f);
    /* nested groups and a group right after a field */
    f = compile_ok("<A>( \\(<B>( <C>)?\\))?: <D>");
    assert_true(lf_logformat_is_literal(f));
    same_as_regex(f, "a (b c): d");
    same_as_regex(f, "a (b): d");
    same_as_regex(f, "a: d");
    same_as_regex(f, "a (b c) (e): d: f");
    lf_logformat_free(f);
    /* the scanner's first path (each field to the first place its literal matches, each group
     * taken) fails on these and its search takes over: the end of the line comes too soon, a
     * group's body fails after its first literal, a field ends at its second candidate */
    f = compile_ok("<A>,<B>;");
    assert_true(lf_logformat_is_literal(f));
    lf_span sp2[LF_LOGFORMAT_MAX_FIELDS];
    const char *c = "x,y;z,w;";
    assert_int_equal(lf_logformat_match(f, c, strlen(c), sp2), 1);
    assert_field(c, &sp2[1], "y;z,w");
    same_as_regex(f, c);
    same_as_regex(f, "x,y;z,w;q");
    decided_by(f, c, SEARCH);
    decided_by(f, "x,y;", FIRST_PATH);
    lf_logformat_free(f);
    f = compile_ok("<A>( \\(<B>\\))?: <C>");
    same_as_regex(f, "a (b) c: d");
    same_as_regex(f, "a (b): (c): d");
    same_as_regex(f, "a b c: d");
    decided_by(f, "a (b) c: d", SEARCH);
    decided_by(f, "a b c: d", SEARCH);
    decided_by(f, "a (b): c", FIRST_PATH);
    lf_logformat_free(f);
    f = compile_ok("<A> x <B> - <C>");
    same_as_regex(f, "a b x c d - e - f");
    same_as_regex(f, "a x x x - - - -");
    decided_by(f, "a b x c d - e - f", FIRST_PATH); /* fields end where their literal matches */
    lf_logformat_free(f);
    /* a whitespace run the scanner takes whole, where the regex splits it around an empty field */
    f = compile_ok("<A> <B> <C>");
    same_as_regex(f, "a  c");
    decided_by(f, "a  c", REGEX);
    lf_logformat_free(f);
    /* other regex syntax is PCRE2's alone */
    f = compile_ok("<A>(\\[<B>\\])??: <C>");
    assert_false(lf_logformat_is_literal(f));
    lf_logformat_free(f);
    f = compile_ok("<A> (x|y) <B>");
    assert_false(lf_logformat_is_literal(f));
    lf_logformat_free(f);
}

static void bad_formats(void **state)
{
    lf_logformat *f = NULL;
    char err[256] = "";
    assert_int_equal(lf_logformat_compile("<A> (unclosed <B>", &f, err, sizeof err), LF_ECONFIG);
    assert_null(f);
    assert_non_null(strstr(err, "bad line format"));
    assert_int_equal(lf_logformat_compile("<A> <A>", &f, err, sizeof err), LF_ECONFIG);
    assert_int_equal(lf_logformat_compile(NULL, &f, err, sizeof err), LF_ECONFIG);
    /* no fields at all: the whole line must equal the literal */
    f = compile_ok("hello world");
    lf_span sp[LF_LOGFORMAT_MAX_FIELDS];
    assert_int_equal(match_both(f, "hello   world", sp), 1);
    assert_int_equal(match_both(f, "hello world!", sp), 0);
    lf_logformat_free(f);
    /* "<" that is not a placeholder is literal */
    f = compile_ok("<A> <= <B>");
    assert_int_equal(lf_logformat_field_count(f), 2);
    assert_int_equal(match_both(f, "1 <= 2", sp), 1);
    lf_logformat_free(f);
}

static void bytes_of_any_value(void **state)
{
    lf_logformat *f = compile_ok("<A> <B>: <C>");
    lf_span sp[3];
    const char line[] = "a\0b c\xff: \x80z\0";
    size_t len = sizeof line - 1;
    assert_int_equal(lf_logformat_match(f, line, len, sp), 1);
    assert_int_equal(sp[0].len, 3); /* "a\0b" */
    assert_int_equal(sp[2].len, 3); /* "\x80z\0" */
    lf_span rx[3];
    assert_int_equal(lf_logformat_match_regex(f, line, len, rx), 1);
    assert_int_equal(rx[0].len, 3);
    lf_logformat_free(f);
}

static void timestamps(void **state)
{
    int64_t us;
    char iso[32];
    assert_int_equal(lf_timefmt_parse("%y%m%d %H%M%S", "081109 203615", 13, 0, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2008-11-09T20:36:15.000Z");
    const char *h = "2015-10-18 18:01:47,978";
    assert_int_equal(lf_timefmt_parse("%Y-%m-%d %H:%M:%S,%f", h, strlen(h), 0, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2015-10-18T18:01:47.978Z");
    const char *a = "Sun Dec 04 04:47:44 2005";
    assert_int_equal(lf_timefmt_parse("%a %b %d %H:%M:%S %Y", a, strlen(a), 0, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2005-12-04T04:47:44.000Z");
    const char *b = "2005-06-03-15.42.50.675872";
    assert_int_equal(lf_timefmt_parse("%Y-%m-%d-%H.%M.%S.%f", b, strlen(b), 0, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2005-06-03T15:42:50.675872Z");
    /* zones: the text's own offset wins over the configured one */
    int32_t tz;
    assert_int_equal(lf_timefmt_parse_tz("+02:00", &tz), 0);
    assert_int_equal(tz, 7200);
    assert_int_equal(lf_timefmt_parse("%Y-%m-%d %H:%M:%S", "2020-01-01 02:00:00", 19, tz, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2020-01-01T00:00:00.000Z");
    const char *z = "2020-01-01T00:00:00-0530";
    assert_int_equal(lf_timefmt_parse("%Y-%m-%dT%H:%M:%S%z", z, strlen(z), tz, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2020-01-01T05:30:00.000Z");
    assert_int_equal(lf_timefmt_parse("%s", "1117838570", 10, 0, &us), 0);
    lf_timefmt_iso8601(us, iso);
    assert_string_equal(iso, "2005-06-03T22:42:50.000Z");
    /* what does not fit is refused */
    assert_int_equal(lf_timefmt_parse("%Y-%m-%d", "2020-13-01", 10, 0, &us), LF_EFORMAT);
    assert_int_equal(lf_timefmt_parse("%Y-%m-%d", "2020-12-01x", 11, 0, &us), LF_EFORMAT);
    assert_int_equal(lf_timefmt_parse_tz("Mars/Olympus", &tz), LF_ECONFIG);
}

static void params(void **state)
{
    lf_param p[8];
    const char *t = "Received block <*> of size <*> from <*>";
    const char *m = "Received block blk_-1 of  size 91178 from /10.250.10.6";
    int n = lf_template_params(t, strlen(t), m, strlen(m), p, 8);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].len, 6);
    assert_memory_equal(m + p[2].off, "/10.250.10.6", 12);
    /* parameters inside tokens and a list collapsed into one parameter */
    const char *t2 = "ask <*> to delete <*>";
    const char *m2 = "ask 10.0.0.1:50010 to delete  blk_1 blk_2 blk_3";
    n = lf_template_params(t2, strlen(t2), m2, strlen(m2), p, 8);
    assert_int_equal(n, 2);
    assert_int_equal(p[1].len, strlen("blk_1 blk_2 blk_3"));
    const char *t3 = "size=<*>, free <*>";
    const char *m3 = "size=12, free 4";
    n = lf_template_params(t3, strlen(t3), m3, strlen(m3), p, 8);
    assert_int_equal(n, 2);
    assert_memory_equal(m3 + p[0].off, "12", 2);
    /* a message that does not fit */
    assert_int_equal(lf_template_params(t3, strlen(t3), "other", 5, p, 8), -1);
    /* never more than max */
    const char *t4 = "<*> <*> <*> <*>";
    n = lf_template_params(t4, strlen(t4), "a b c d", 7, p, 2);
    assert_int_equal(n, 2);
}

/* The sixteen-bytes-at-a-time search agrees with the byte-by-byte definition of whitespace for every
 * byte value, at every start and end (so across and at the edges of its blocks), and reads nothing
 * past the end (the buffer is exactly as long as the text, which ASan checks). */
static void next_space_agrees(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool want = c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
        assert_int_equal(lf_is_space((unsigned char)c), want);
    }
    enum { N = 70 };
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < N; at += 7) {
            char *buf = malloc(N);
            assert_non_null(buf);
            memset(buf, 'x', N);
            buf[at] = (char)c;
            for (size_t p = 0; p <= N; p++)
                for (size_t len = p; len <= N; len += 5) {
                    size_t want = p;
                    while (want < len && !lf_is_space((unsigned char)buf[want]))
                        want++;
                    assert_int_equal(lf_next_space(buf, p, len), want);
                }
            free(buf);
        }
    }
}

/* The token hash reads its last 1-7 bytes with two fixed loads: the same value as the word of those
 * bytes zero-padded, for every length. */
static void hash_tail_is_padded_word(void **state)
{
    (void)state;
    unsigned char b[40];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n < sizeof b; n++) {
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0x100000001b3ULL);
        size_t k = 0;
        for (; k + 8 <= n; k += 8) {
            uint64_t w;
            memcpy(&w, b + k, 8);
            h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
            h ^= h >> 31;
        }
        if (k < n) {
            uint64_t w = 0;
            for (size_t j = k; j < n; j++)
                w |= (uint64_t)b[j] << (8 * (j - k));
            h = (h ^ w) * 0x94d049bb133111ebULL;
            h ^= h >> 29;
        }
        assert_true(lf_phash_mix(h) == lf_phash_bytes(b, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hdfs_format),  cmocka_unit_test(escaped_brackets_and_pipes),
        cmocka_unit_test(optional_group_scanned), cmocka_unit_test(bad_formats),
        cmocka_unit_test(bytes_of_any_value), cmocka_unit_test(timestamps),
        cmocka_unit_test(params), cmocka_unit_test(next_space_agrees),
        cmocka_unit_test(hash_tail_is_padded_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
