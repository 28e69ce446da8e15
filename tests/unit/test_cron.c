/* analytics/cron: the expression parser (fields, lists, ranges, steps, errors) and next-time
 * computation in UTC and in a zone with DST, checked against a brute-force minute scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"
#include "jobs.h"

static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return timegm(&tm);
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void parse_fields(void **state)
{
    (void)state;
    lf_cron c;
    assert_int_equal(lf_cron_parse("* * * * *", &c), 0);
    assert_true(c.minutes == (1ULL << 60) - 1);
    assert_int_equal(c.hours, (1u << 24) - 1);
    assert_true(c.mday_star && c.wday_star);
    assert_int_equal(c.wdays, 0x7f);

    assert_int_equal(lf_cron_parse("*/15 1,3-5 1-31/10 */3 7", &c), 0);
    assert_true(c.minutes == ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
    assert_int_equal(c.hours, (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5));
    assert_int_equal(c.mdays, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    assert_int_equal(c.months, (1u << 1) | (1u << 4) | (1u << 7) | (1u << 10));
    assert_int_equal(c.wdays, 1); /* 7 is Sunday */
    assert_false(c.mday_star);
    assert_false(c.wday_star);

    assert_int_equal(lf_cron_parse("  5/20 0 * * 1-5  ", &c), 0); /* "a/n": a to the end */
    assert_true(c.minutes == ((1ULL << 5) | (1ULL << 25) | (1ULL << 45)));
    assert_int_equal(c.wdays, 0x3e);
}

static void parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
        "* * * 0 *", "* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "a * * * *",
        "1, * * * *", ",1 * * * *", "1-* * * * *", "*/ * * * *", "1--2 * * * *", "99999999999 * * * *",
        "*/61 * * * *", "* * * * MON",
    };
    lf_cron c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (lf_cron_parse(bad[i], &c) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void next_utc(void **state)
{
    (void)state;
    lf_cron c;
    set_tz("UTC");
    assert_int_equal(lf_cron_parse("10 * * * *", &c), 0);
    assert_true(lf_cron_next(&c, utc(2026, 3, 1, 12, 9)) == utc(2026, 3, 1, 12, 10));
    assert_true(lf_cron_next(&c, utc(2026, 3, 1, 12, 10)) == utc(2026, 3, 1, 13, 10)); /* strictly after */
    assert_true(lf_cron_next(&c, utc(2026, 3, 1, 12, 10) + 59) == utc(2026, 3, 1, 13, 10));
    assert_true(lf_cron_next(&c, utc(2026, 12, 31, 23, 30)) == utc(2027, 1, 1, 0, 10));

    assert_int_equal(lf_cron_parse("0 0 29 2 *", &c), 0); /* leap days only */
    assert_true(lf_cron_next(&c, utc(2026, 1, 1, 0, 0)) == utc(2028, 2, 29, 0, 0));
    assert_int_equal(lf_cron_parse("0 0 30 2 *", &c), 0); /* never */
    assert_true(lf_cron_next(&c, utc(2026, 1, 1, 0, 0)) == (time_t)-1);

    /* Both day fields restricted: either matches. 2026-03-01 is a Sunday. */
    assert_int_equal(lf_cron_parse("0 6 15 * 1", &c), 0);
    assert_true(lf_cron_next(&c, utc(2026, 3, 1, 0, 0)) == utc(2026, 3, 2, 6, 0));
    assert_true(lf_cron_next(&c, utc(2026, 3, 14, 0, 0)) == utc(2026, 3, 15, 6, 0));
    /* Only day-of-week restricted: the day of month is not enough. */
    assert_int_equal(lf_cron_parse("0 6 * * 0", &c), 0);
    assert_true(lf_cron_next(&c, utc(2026, 3, 2, 0, 0)) == utc(2026, 3, 8, 6, 0));
}

/* The answer must be the first minute after t that a plain minute-by-minute scan finds. */
static time_t brute_next(const lf_cron *c, time_t t)
{
    for (time_t m = t - ((t % 60) + 60) % 60 + 60; m < t + 400 * 86400; m += 60) {
        struct tm tm;
        localtime_r(&m, &tm);
        bool md = (c->mdays >> tm.tm_mday) & 1, wd = (c->wdays >> tm.tm_wday) & 1;
        bool day = (c->mday_star || c->wday_star) ? (md && wd) : (md || wd);
        if (((c->minutes >> tm.tm_min) & 1) && ((c->hours >> tm.tm_hour) & 1) &&
            ((c->months >> (tm.tm_mon + 1)) & 1) && day)
            return m;
    }
    return (time_t)-1;
}

static void next_matches_brute_force(void **state)
{
    (void)state;
    static const char *const exprs[] = {"*/7 * * * *", "0 */5 * * 1-5", "30 2 1,15 * *",
                                        "15 10 * 3,11 0", "0 0 * * *", "45 23 31 * *"};
    static const char *const zones[] = {"UTC", "Europe/Paris", "America/New_York"};
    unsigned seed = 12345;
    for (size_t z = 0; z < 3; z++) {
        set_tz(zones[z]);
        for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
            lf_cron c;
            assert_int_equal(lf_cron_parse(exprs[e], &c), 0);
            for (int i = 0; i < 40; i++) {
                seed = seed * 1103515245u + 12345u;
                time_t t = utc(2026, 1, 1, 0, 0) + (time_t)(seed % (365u * 86400u));
                time_t got = lf_cron_next(&c, t), want = brute_next(&c, t);
                if (got != want)
                    fail_msg("%s in %s after %lld: got %lld, want %lld", exprs[e], zones[z],
                             (long long)t, (long long)got, (long long)want);
            }
        }
    }
    set_tz("UTC");
}

static void next_in_zone_with_dst(void **state)
{
    (void)state;
    lf_cron c;
    set_tz("Europe/Paris");
    assert_int_equal(lf_cron_parse("0 3 * * *", &c), 0);
    /* 2026-03-29: clocks jump 02:00 -> 03:00 local (01:00 UTC); 03:00 CEST is 01:00 UTC. */
    assert_true(lf_cron_next(&c, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0));
    /* Winter: 03:00 CET is 02:00 UTC. */
    assert_true(lf_cron_next(&c, utc(2026, 1, 10, 12, 0)) == utc(2026, 1, 11, 2, 0));
    set_tz("UTC");
}

static void percentile_nearest_rank(void **state)
{
    (void)state;
    long long v[] = {15, 20, 35, 40, 50};
    assert_int_equal(lf_analytics_percentile(v, 5, 30), 20); /* rank ceil(1.5) = 2 */
    assert_int_equal(lf_analytics_percentile(v, 5, 40), 20); /* rank 2 exactly */
    assert_int_equal(lf_analytics_percentile(v, 5, 50), 35);
    assert_int_equal(lf_analytics_percentile(v, 5, 100), 50);
    assert_int_equal(lf_analytics_percentile(v, 5, 99), 50);
    assert_int_equal(lf_analytics_percentile(v, 1, 50), 15);
    long long w[100];
    for (int i = 0; i < 100; i++)
        w[i] = i + 1;
    assert_int_equal(lf_analytics_percentile(w, 100, 90), 90);
    assert_int_equal(lf_analytics_percentile(w, 100, 99), 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_fields),          cmocka_unit_test(parse_errors),
        cmocka_unit_test(next_utc),              cmocka_unit_test(next_matches_brute_force),
        cmocka_unit_test(next_in_zone_with_dst), cmocka_unit_test(percentile_nearest_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
